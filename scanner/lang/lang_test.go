package lang

import "testing"

func TestDetect(t *testing.T) {
	tests := []struct {
		text string
		want Tag
	}{
		{"Your account has been suspended. Please verify your details with us within 24 hours, or it will be closed.", "en"},
		{"Prezado cliente, sua conta foi bloqueada. Para continuar usando o serviço, atualize seus dados com a nossa equipe. Obrigado.", "pt"},
		{"Estimado cliente, su cuenta ha sido bloqueada. Para desbloquearla, confirme sus datos en el siguiente enlace. Gracias.", "es"},
		{"Cher client, votre colis est en attente. Merci de régler les frais de livraison pour recevoir votre commande dans les délais.", "fr"},
		{"Sehr geehrte Kundin, Ihr Konto wurde gesperrt. Bitte bestätigen Sie Ihre Daten, damit wir die Sperre für Sie aufheben können.", "de"},
		{"Gentile cliente, il tuo conto è stato sospeso. Per riattivarlo conferma i tuoi dati entro 24 ore. Grazie per la collaborazione.", "it"},
		{"Beste klant, uw rekening is geblokkeerd. Wij vragen u om uw gegevens te bevestigen voor het einde van deze week.", "nl"},
		{"", Unknown},
		{"12345 $$$ !!!", Unknown},
		{"Привет, как дела? Давно не виделись.", Unknown},
	}
	for _, tt := range tests {
		if got := Detect(tt.text); got != tt.want {
			t.Errorf("Detect(%.40q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func FuzzDetect(f *testing.F) {
	f.Add("the quick brown fox")
	f.Add("você não está")
	f.Fuzz(func(t *testing.T, s string) {
		got := Detect(s)
		if _, ok := stopwords[got]; !ok && got != Unknown {
			t.Fatalf("Detect(%q) = %q, not a known tag", s, got)
		}
	})
}
