package rules

import (
	_ "embed"
	"path"
	"strings"

	"github.com/mxgrid/mxgrid/scanner"
)

// Rules about attachments that carry phishing or malware.
const (
	AttachHTML        = "ATTACH_HTML"
	AttachDiskImage   = "ATTACH_DISK_IMAGE"
	AttachOneNote     = "ATTACH_ONENOTE"
	AttachArchivePass = "ATTACH_ARCHIVE_PASSWORD"
	ImageSingleLink   = "HTML_IMAGE_SINGLE_LINK"
)

var attachWeights = map[string]float64{
	AttachHTML:        3.0,
	AttachDiskImage:   4.0,
	AttachOneNote:     4.0,
	AttachArchivePass: 3.0,
	ImageSingleLink:   1.0,
}

var (
	//go:embed lists/archivepassword.txt
	archivePasswordList string
	archivePassword     = parsePhrases(archivePasswordList)
)

var attachExt = map[string]string{
	// A web page as a file opens in the browser from the local disk: a
	// login form with no URL to block. Invoices are PDFs, not pages.
	".htm": AttachHTML, ".html": AttachHTML, ".shtml": AttachHTML, ".xhtml": AttachHTML,
	".svg": AttachHTML, ".mht": AttachHTML, ".mhtml": AttachHTML,
	// Containers Windows mounts with a double click, which carried
	// malware past Mark-of-the-Web; nobody mails a disk image.
	".iso": AttachDiskImage, ".img": AttachDiskImage, ".vhd": AttachDiskImage, ".vhdx": AttachDiskImage,
	".one": AttachOneNote, ".onepkg": AttachOneNote,
}

var archiveExt = map[string]bool{".zip": true, ".7z": true, ".rar": true}

func attachRisk(f *findings, _ *scanner.Envelope, m *scanner.Message) {
	archive := false
	for _, p := range m.Parts {
		if !p.IsAttachment() {
			continue
		}
		ext := strings.ToLower(path.Ext(p.Filename))
		if sym, ok := attachExt[ext]; ok {
			f.hit(sym, p.Filename)
		} else if p.Filename == "" && p.Disposition == "attachment" &&
			(p.ContentType == "text/html" || p.ContentType == "image/svg+xml") {
			f.hit(AttachHTML, p.ContentType)
		}
		archive = archive || archiveExt[ext]
	}
	// An archive whose password is in the text: encrypted so that no
	// scanner can look inside, with the key for the human.
	if archive {
		if w := archivePassword.find(foldParts(maxFoldedText, m.Subject, m.Text, m.HTML.Text)); w != "" {
			f.hit(AttachArchivePass, w)
		}
	}
	if m.HTML.Images > 0 && len(strings.TrimSpace(m.HTML.Text)) < 100 && len(strings.TrimSpace(m.Text)) < 100 {
		domains := map[string]bool{}
		for _, u := range m.URLs {
			if !u.Image {
				domains[u.Domain] = true
			}
		}
		if len(domains) == 1 {
			f.hit(ImageSingleLink, "")
		}
	}
}
