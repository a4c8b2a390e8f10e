package scanner

import "strings"

// SymbolHelp says in a sentence what a symbol means, for people reading a
// verdict (the panel's message page): "" for a symbol it does not know.
// Families (SPF_*, DKIM_*, RBL_*...) are explained by their prefix.
func SymbolHelp(name string) string {
	if h, ok := symbolHelp[name]; ok {
		return h
	}
	for _, f := range symbolFamilies {
		if strings.HasPrefix(name, f.prefix) {
			return f.help
		}
	}
	return ""
}

var symbolHelp = map[string]string{
	"MODEL_SPAM":              "The statistical model, trained on known spam and ham, found the words and structure typical of spam.",
	"MODEL_HAM":               "The statistical model found the message typical of legitimate mail.",
	"CHECK_ERROR":             "A check could not run (its engine was down or too slow); the message was judged without it.",
	"CLAMAV_VIRUS":            "ClamAV found malware.",
	"CLAMAV_TOO_LARGE":        "The message was larger than ClamAV scans.",
	"EICAR":                   "The EICAR antivirus test file.",
	"MISSING_FROM":            "No From header: legitimate software always writes one.",
	"HEADER_REPEATED":         "A header field allowed only once appears twice, so programs disagree on which one counts.",
	"MISSING_DATE":            "No Date header.",
	"MISSING_MID":             "No Message-ID header.",
	"DATE_INVALID":            "The Date header cannot be read.",
	"DATE_BAD_TZ":             "The Date header's time zone does not exist.",
	"DATE_IN_FUTURE":          "The Date header is far in the future.",
	"MID_MALFORMED":           "The Message-ID header is malformed.",
	"MAILER_BULK":             "Sent by bulk-mailing software.",
	"FROM_DISPLAY_SPOOF":      "The sender's display name shows an address other than the real sender's.",
	"FROM_BRAND_CLAIM":        "The sender's name is a well-known brand (a bank, a parcel service, Microsoft...) but the mail comes from another organisation's domain.",
	"FROM_LOOKALIKE":          "The sender's domain imitates a well-known brand's (a misspelling, digits for letters, the brand's name inside another domain).",
	"FROM_ABUSED_TLD":         "The sender's domain is under a top-level domain (.top, .sbs, .cfd...) where most names are registered for spam and phishing.",
	"FROM_NAME_RCPT_DOMAIN":   "The sender's name shows the reader's own domain, but the mail comes from another organisation: a fake IT department or mail administrator.",
	"FROM_MALFORMED":          "The sender's address is malformed in a way no real mail system writes (no top-level domain, an IP address, % routing).",
	"REPLYTO_FREEMAIL_DIFF":   "Replies go to a free-mail address other than the sender's, whose address takes replies.",
	"HEADER_8BIT":             "Raw 8-bit characters in headers (not encoded as the standard requires).",
	"HEADER_EMPTY_ADDR":       "An address header is empty.",
	"PRIORITY_HIGH":           "Marked urgent.",
	"TO_UNDISCLOSED":          "Sent to undisclosed recipients.",
	"TO_MANY_DOMAINS":         "To and Cc show the addresses of many unrelated organisations: a harvested list left visible.",
	"MIME_NO_VERSION":         "MIME parts without the MIME-Version header.",
	"SUBJ_ALL_CAPS":           "The subject is written in capitals.",
	"SUBJ_HASHBUSTER":         "Random characters in the subject, to defeat filters that compare messages.",
	"TEXT_UNDECLARED_8BIT":    "8-bit text without a declared character set.",
	"TEXT_UPPERCASE":          "Most of the text is in capitals.",
	"TEXT_HTML_AS_PLAIN":      "HTML sent as plain text.",
	"TEXT_URGENCY":            "The text threatens a deadline or a loss (account suspended, last notice, within 24 hours), or asks for an urgent payment by someone who cannot take calls.",
	"QR_CODE_ONLY":            "A picture of a QR code with next to no text: the lure and its link are in the picture, to be opened on a phone.",
	"TEXT_JOB_SCAM":           "Easy work paid by the day with no experience, and a recruiter to write to on WhatsApp or Telegram: a job scam.",
	"TEXT_MIRACLE_CURE":       "A body transformed without effort (weight melted away, years undone) by a secret or guaranteed remedy: supplement spam.",
	"TEXT_CREDENTIALS":        "The text asks to verify an account, confirm details, enter a password or pay a fee, announces new bank details, or asks for gift cards.",
	"TEXT_EXTORTION":          "The text threatens to expose the reader (a recording, their browsing, their contacts told) and asks for cryptocurrency: extortion.",
	"TEXT_LURE_LINK":          "A voicemail, shared file, invoice or secure message waits behind a link to free hosting, a shortener, an IP address, a look-alike domain or an abused top-level domain.",
	"TEXT_ADVANCE_FEE":        "A prize, inheritance or donation out of nowhere, a request for the reader's name, address or identity document, and replies going to a webmail mailbox: advance-fee fraud.",
	"TEXT_CALLBACK":           "A charge, renewal or order the reader never made, sent from a webmail mailbox: the number to call for a refund is the fraud.",
	"TEXT_LEAD_GEN":           "A cold pitch for search ranking, a website or leads from a webmail mailbox, or other people's contact lists for sale.",
	"FROM_BRAND_HOME":         "A listed brand's or public body's mail from its own domain that sends the reader nowhere else: evidence of ham.",
	"TEXT_PHARMA":             "A prescription-only medicine offered without a prescription, which no licensed pharmacy may do.",
	"TEXT_MONEY_PROMISE":      "The text promises guaranteed returns, doubled money, income from home or credit without a credit check, which no regulated investment or lender may promise.",
	"TEXT_PHISH_ACTION":       "Urgency, a request for credentials or money, and a link away from the sender's own site, a form, a QR code to scan or a reply to a webmail mailbox to act on it: the shape of a phishing or business email compromise message.",
	"TEXT_RCPT_ADDRESS":       "The subject or greeting addresses the reader by mailbox address, as mail-merge phishing does.",
	"TEXT_ZERO_WIDTH":         "Invisible characters inside words, so that they read normally but match no filter.",
	"TEXT_HOMOGLYPH":          "Words with letters swapped for look-alike Cyrillic or Greek ones (PayPal with a Cyrillic a).",
	"BODY_EMPTY":              "The message has no text.",
	"HTML_HIDDEN_TEXT":        "Text hidden from the reader (invisible colours, tiny fonts), written for filters.",
	"HTML_IMAGE_ONLY":         "An image and almost no text: the words are in the picture, out of filters' reach.",
	"HTML_SCRIPT":             "Scripts in the message.",
	"HTML_FORM":               "A form inside the message (phishing collects passwords this way).",
	"HTML_COMMENT_FLOOD":      "Many HTML comments, used to break up words.",
	"URL_IP_HOST":             "A link to a bare IP address instead of a name.",
	"URL_USERINFO":            "A link with a user name before the host (https://bank.example@evil.example), which hides the real destination.",
	"URL_ENCODED_HOST":        "A link whose host name is percent-encoded, to hide it.",
	"URL_TEXT_MISMATCH":       "A link's text shows one site while it leads to another.",
	"URL_LOOKALIKE":           "A link leads to a domain that imitates a well-known brand's.",
	"URL_SHORTENER":           "A link goes through a URL shortener, which hides where it leads.",
	"URL_FREE_HOSTING":        "A link leads to free web hosting, a site builder or an IPFS gateway, where phishing pages cost nothing.",
	"URL_ABUSED_TLD":          "A link goes to a top-level domain (.top, .sbs, .cfd...) where most names are registered for spam and phishing.",
	"URL_RCPT_FRAGMENT":       "A link carries the reader's own address after its #, which phishing pages read to pre-fill a fake login form.",
	"URL_DATA_URI":            "A link carries a whole page inside itself (data: URI), out of reach of link blocklists.",
	"URL_PERCENT_HEAVY":       "A link is mostly percent-encoded, hiding where it goes.",
	"FORM_FOREIGN_ACTION":     "A form in the message sends what is typed into it to another organisation's site.",
	"ATTACH_EXECUTABLE":       "An executable attachment.",
	"ATTACH_DOUBLE_EXT":       "An attachment with a double extension (invoice.pdf.exe).",
	"ATTACH_HTML_ACTIVE":      "An attached web page with a form, a script or a remote link: a working phishing page opened from the disk.",
	"ATTACH_HTML":             "A web page (HTML or SVG) attached as a file: it opens a login form in the browser with no link to block.",
	"ATTACH_DISK_IMAGE":       "A disk image (ISO, IMG, VHD) attached: a way to carry malware past Windows' download warnings.",
	"ATTACH_ONENOTE":          "A OneNote file attached: used to hide malicious scripts behind a fake button.",
	"ATTACH_ARCHIVE_PASSWORD": "An archive with its password in the text: encrypted so that no scanner can look inside.",
	"ATTACH_PDF_LAUNCH":       "An attached PDF that starts a program or opens a file when it is opened or clicked.",
	"ATTACH_PDF_JAVASCRIPT":   "An attached PDF that runs JavaScript.",
	"HTML_IMAGE_SINGLE_LINK":  "A picture and a single link, with almost no text.",
	"HELO_BARE_IP":            "The sending server introduced itself with a bare IP address.",
	"HELO_IP_MISMATCH":        "The sending server introduced itself with an address that is not its own.",
	"HELO_NOT_FQDN":           "The sending server introduced itself with a name that is not a full domain name.",
	"HELO_DYNAMIC":            "The sending server's name looks like a home or dynamic connection.",
	"HEADER_BROKEN":           "The message header cannot be read.",
	"MIME_TOO_COMPLEX":        "More MIME parts or nesting than the filter reads: the rest could not be checked.",
	"MIME_BROKEN":             "The MIME structure is broken.",
	"MIME_UNKNOWN_CHARSET":    "A character set the filter does not know.",
	"MIME_UNKNOWN_ENCODING":   "A transfer encoding the filter does not know.",
}

var symbolFamilies = []struct{ prefix, help string }{
	{"SPF_HELO_", "SPF for the name the sending server introduced itself with."},
	{"SPF_", "SPF: whether the sender's domain allows the sending server (pass, fail, softfail, none...)."},
	{"DKIM_", "DKIM: whether the message's cryptographic signature from the sending domain is valid."},
	{"ARC_", "ARC: whether the chain of forwarders and lists that vouch for the message's earlier authentication is intact."},
	{"DMARC_", "DMARC: whether the visible From domain is confirmed by SPF or DKIM, and what that domain asks receivers to do otherwise."},
	{"RBL_", "The sending server's address is on a DNS blocklist."},
	{"URIBL_", "A link in the message goes to a domain on a DNS blocklist."},
	{"AV_", "The built-in antivirus layer: a dangerous or unreadable attachment or archive."},
}
