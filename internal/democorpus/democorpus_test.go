package democorpus

import (
	"bytes"
	"net/mail"
	"testing"
)

func TestMessages(t *testing.T) {
	msgs, err := Messages()
	if err != nil {
		t.Fatal(err)
	}
	var spam, ham int
	for i, m := range msgs {
		if m.Spam {
			spam++
		} else {
			ham++
		}
		// Interleaved while both last: a short replay shows both kinds.
		if i > 0 && i < 2*min(spam, ham) && m.Spam == msgs[i-1].Spam {
			t.Errorf("%s follows a message of the same kind at %d", m.Name, i)
		}
		if _, err := mail.ReadMessage(bytes.NewReader(m.Data)); err != nil {
			t.Errorf("%s: not a message: %v", m.Name, err)
		}
	}
	if spam < 10 || ham < 10 {
		t.Errorf("%d spam and %d ham, want at least 10 of each", spam, ham)
	}
}
