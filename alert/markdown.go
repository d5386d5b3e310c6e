package alert

import (
	"strings"
	"unicode/utf8"
)

// markdownV2Special are the characters Telegram's MarkdownV2 reserves; each
// must be escaped with a backslash outside of markup.
const markdownV2Special = "_*[]()~`>#+-=|{}.!\\"

// EscapeMarkdownV2 escapes s for Telegram's MarkdownV2 so that it renders
// literally. Invalid UTF-8 is replaced by U+FFFD.
func EscapeMarkdownV2(s string) string {
	var b strings.Builder
	b.Grow(len(s) + len(s)/4)
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if r < utf8.RuneSelf && strings.IndexByte(markdownV2Special, byte(r)) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mdLine is one line of a MarkdownV2 message as indivisible atoms: an
// escaped character, a plain character, or a whole bold span.
type mdLine []string

func (l mdLine) plain(s string) mdLine {
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if r == '\n' || r == '\r' {
			r = ' ' // lines are split by the caller
		}
		l = append(l, EscapeMarkdownV2(string(r)))
	}
	return l
}

func (l mdLine) bold(s string) mdLine {
	if s == "" {
		return l
	}
	return append(l, "*"+EscapeMarkdownV2(strings.NewReplacer("\n", " ", "\r", " ").Replace(s))+"*")
}

// utf16Len is the length Telegram counts: UTF-16 code units.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if r > 0xFFFF {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// chunk packs lines into messages of at most limit UTF-16 units, breaking
// between lines where it can and between atoms where a line is too long, so
// no escape sequence or bold span is ever cut.
func chunk(lines []mdLine, limit int) []string {
	var out []string
	var cur strings.Builder
	curLen := 0
	flush := func() {
		// A chunk of only white space (a long run of spaces split off)
		// would be rejected by Telegram as an empty message.
		if curLen > 0 && strings.TrimSpace(cur.String()) != "" {
			out = append(out, cur.String())
		}
		cur.Reset()
		curLen = 0
	}
	for i, line := range lines {
		lineLen := 0
		for _, a := range line {
			lineLen += utf16Len(a)
		}
		sep := 0
		if i > 0 && curLen > 0 {
			sep = 1
		}
		if curLen+sep+lineLen <= limit {
			if sep == 1 {
				cur.WriteByte('\n')
			}
			for _, a := range line {
				cur.WriteString(a)
			}
			curLen += sep + lineLen
			continue
		}
		flush()
		if lineLen == 0 {
			continue
		}
		for _, a := range line {
			n := utf16Len(a)
			if curLen+n > limit {
				flush()
			}
			cur.WriteString(a)
			curLen += n
		}
	}
	flush()
	return out
}
