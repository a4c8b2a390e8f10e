// Package lang guesses the language a message is written in, from the
// share of each language's most common short words. It is meant for
// reports (per-language breakdowns of an evaluation), not for verdicts: a
// few hundred words of text are plenty, a subject line alone is a guess.
package lang

import (
	"strings"
	"unicode"
)

// Tag is an ISO 639-1 code, or Unknown.
type Tag string

// Unknown is reported when no language reaches the minimum share.
const Unknown Tag = "other"

// stopwords are frequent function words that are rare in the other
// languages listed. Words shared by two languages ("de", "a", "la") are
// left out so that they cannot tip a close call.
var stopwords = map[Tag][]string{
	"en": {"the", "and", "you", "your", "is", "are", "this", "that", "with", "for", "have", "not", "will", "from", "we", "our", "be", "it", "of", "to"},
	"pt": {"você", "voce", "não", "nao", "seu", "sua", "para", "com", "uma", "são", "está", "isso", "pelo", "pela", "nos", "dos", "das", "ao", "também", "obrigado"},
	"es": {"usted", "su", "sus", "para", "con", "una", "los", "las", "del", "está", "es", "por", "el", "y", "que", "gracias", "cuenta", "sido", "este", "esta"},
	"fr": {"vous", "votre", "vos", "les", "des", "est", "une", "pour", "avec", "dans", "sur", "pas", "nous", "sont", "été", "le", "et", "du", "au", "merci"},
	"de": {"und", "der", "die", "das", "sie", "ihr", "ihre", "ist", "nicht", "mit", "für", "auf", "wir", "den", "dem", "ein", "eine", "zu", "bitte", "wurde"},
	"it": {"il", "che", "per", "con", "una", "sono", "della", "del", "gli", "non", "ti", "tuo", "tua", "suo", "è", "di", "nel", "alla", "grazie", "questo"},
	"nl": {"het", "een", "van", "niet", "zijn", "voor", "met", "op", "u", "uw", "wij", "ons", "dat", "deze", "wordt", "bij", "ook", "naar", "maar", "heeft"},
}

var index = func() map[string][]Tag {
	idx := map[string][]Tag{}
	for t, words := range stopwords {
		for _, w := range words {
			idx[w] = append(idx[w], t)
		}
	}
	return idx
}()

// maxWords bounds the work per text.
const maxWords = 2000

// Detect returns the language whose stopwords make up the largest share
// of text's words, or Unknown when fewer than 3 stopwords or less than 5 %
// of the words are any language's.
func Detect(text string) Tag {
	counts := map[Tag]int{}
	words := 0
	for w := range strings.FieldsFuncSeq(text, func(r rune) bool { return !unicode.IsLetter(r) }) {
		if words == maxWords {
			break
		}
		words++
		for _, t := range index[strings.ToLower(w)] {
			counts[t]++
		}
	}
	best, bestN := Unknown, 0
	for t, n := range counts {
		if n > bestN || (n == bestN && t < best) {
			best, bestN = t, n
		}
	}
	if bestN < 3 || bestN*20 < words {
		return Unknown
	}
	return best
}
