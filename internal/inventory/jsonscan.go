package inventory

import (
	"bytes"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonScanner walks JSON bytes in place, without building maps or
// reflecting into structs: lockfiles are megabytes of objects of which the
// scanners need a handful of string fields, and decoding the rest is most of
// the cost of a generic decoder. Strings without escapes are returned as
// sub-slices of the input (no copy).
//
// The first error stops the scanner (every method becomes a no-op) and is
// kept with its line; callers check s.err once at the end.
type jsonScanner struct {
	b       []byte
	i       int
	lenient bool // bun.lock: trailing commas and // or /* */ comments
	err     *ParseError
}

func (s *jsonScanner) fail(msg string) {
	if s.err == nil {
		s.err = perr(lineAt(s.b, s.i), "%s", msg)
	}
	s.i = len(s.b)
}

func (s *jsonScanner) failed() bool { return s.err != nil }

func (s *jsonScanner) ws() {
	b := s.b
	for s.i < len(b) {
		switch b[s.i] {
		case ' ', '\n', '\r', '\t':
			s.i++
		case '/':
			if !s.lenient || s.i+1 >= len(b) {
				return
			}
			switch b[s.i+1] {
			case '/':
				j := bytes.IndexByte(b[s.i:], '\n')
				if j < 0 {
					s.i = len(b)
					return
				}
				s.i += j + 1
			case '*':
				j := bytes.Index(b[s.i+2:], []byte("*/"))
				if j < 0 {
					s.fail("unterminated comment")
					return
				}
				s.i += j + 4
			default:
				return
			}
		default:
			return
		}
	}
}

// peek returns the next significant byte, 0 at the end.
func (s *jsonScanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// enter steps into a container that opens with c; any other value is skipped whole and enter
// reports false (a field of an unexpected type is passed over, not an error).
func (s *jsonScanner) enter(c byte) bool {
	if s.peek() != c {
		s.skip()
		return false
	}
	s.i++
	return true
}

func (s *jsonScanner) expect(c byte) bool {
	if s.peek() != c {
		if s.i >= len(s.b) {
			s.fail("unexpected end of file, expected '" + string(c) + "'")
		} else {
			s.fail("expected '" + string(c) + "', found " + quoteByte(s.b[s.i]))
		}
		return false
	}
	s.i++
	return true
}

func quoteByte(c byte) string {
	if c < 0x20 || c >= 0x7f {
		return "byte 0x" + strconv.FormatUint(uint64(c), 16)
	}
	return "'" + string(c) + "'"
}

// more advances through an object or array: call it before each member with
// first set to true initially. It consumes the separating comma or the
// closing bracket and reports whether another member follows.
func (s *jsonScanner) more(first *bool, closer byte) bool {
	c := s.peek()
	if c == closer {
		s.i++
		return false
	}
	if !*first {
		if c != ',' {
			if c == 0 {
				s.fail("unexpected end of file inside " + containerName(closer))
			} else {
				s.fail("expected ',' or '" + string(closer) + "', found " + quoteByte(c))
			}
			return false
		}
		s.i++
		if s.lenient && s.peek() == closer {
			s.i++
			return false
		}
	}
	if s.failed() {
		return false
	}
	*first = false
	return true
}

func containerName(closer byte) string {
	if closer == '}' {
		return "object"
	}
	return "array"
}

// key reads an object key and the colon after it.
func (s *jsonScanner) key() []byte {
	if s.peek() != '"' {
		if s.i < len(s.b) {
			s.fail("expected a quoted object key, found " + quoteByte(s.b[s.i]))
		} else {
			s.fail("unexpected end of file, expected an object key")
		}
		return nil
	}
	k := s.str()
	s.expect(':')
	return k
}

// str reads a string value; s.i must be at the opening quote (after ws).
func (s *jsonScanner) str() []byte {
	if s.peek() != '"' {
		s.fail("expected a string")
		return nil
	}
	start := s.i + 1
	j := start
	b := s.b
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			s.fail("unterminated string")
			return nil
		}
		j += k
		bs := 0
		for p := j - 1; p >= start && b[p] == '\\'; p-- {
			bs++
		}
		if bs%2 == 0 {
			break
		}
		j++
	}
	s.i = j + 1
	raw := b[start:j]
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	out, ok := unescapeJSON(raw)
	if !ok {
		s.i = start
		s.fail("invalid escape in string")
		return nil
	}
	return out
}

func unescapeJSON(raw []byte) ([]byte, bool) {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(raw) {
			return nil, false
		}
		switch raw[i] {
		case '"', '\\', '/':
			out = append(out, raw[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(raw[i+1:])
			if !ok {
				return nil, false
			}
			i += 4
			if utf16.IsSurrogate(r) && i+6 < len(raw)+1 && i+2 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
				if r2, ok := hex4(raw[i+3:]); ok {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						i += 6
					}
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, false
		}
	}
	return out, true
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// strOrSkip returns the value if it is a string, else skips it.
func (s *jsonScanner) strOrSkip() ([]byte, bool) {
	if s.peek() == '"' {
		return s.str(), true
	}
	s.skip()
	return nil, false
}

// scalar reads a number, true, false or null token.
func (s *jsonScanner) scalar() []byte {
	s.ws()
	start := s.i
	b := s.b
	for s.i < len(b) {
		c := b[s.i]
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'E' {
			s.i++
			continue
		}
		break
	}
	tok := b[start:s.i]
	switch {
	case len(tok) == 0:
		if s.i < len(b) {
			s.fail("unexpected " + quoteByte(b[s.i]))
		} else {
			s.fail("unexpected end of file, expected a value")
		}
	case tok[0] == 't' && string(tok) != "true",
		tok[0] == 'f' && string(tok) != "false",
		tok[0] == 'n' && string(tok) != "null":
		s.i = start
		s.fail("invalid literal " + strconv.Quote(string(tok)))
	case tok[0] != 't' && tok[0] != 'f' && tok[0] != 'n' && tok[0] != '-' && (tok[0] < '0' || tok[0] > '9'):
		s.i = start
		s.fail("invalid literal " + strconv.Quote(string(tok)))
	}
	return tok
}

// skip skips one value of any kind. Containers are skipped by counting
// brackets outside strings, which is much cheaper than validating each
// member; a truncated file still fails (the brackets never balance).
func (s *jsonScanner) skip() {
	switch c := s.peek(); c {
	case '"':
		s.str()
	case '{', '[':
		s.skipContainer()
	default:
		s.scalar()
	}
}

func (s *jsonScanner) skipContainer() {
	b := s.b
	depth := 0
	for s.i < len(b) {
		switch b[s.i] {
		case '"':
			s.str()
			if s.failed() {
				return
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				s.i++
				return
			}
		}
		s.i++
	}
	s.fail("unexpected end of file inside a value")
}

// end checks that nothing but whitespace follows the top-level value.
func (s *jsonScanner) end() {
	if s.failed() {
		return
	}
	if s.peek() != 0 {
		s.fail("unexpected content after the top-level value")
	}
}

// topObject checks that the document is an object and enters it.
func (s *jsonScanner) topObject() bool {
	s.b = bytes.TrimPrefix(s.b, []byte("\xef\xbb\xbf"))
	switch c := s.peek(); c {
	case '{':
		s.i++
		return true
	case 0:
		s.fail("empty file")
	case 'n':
		s.scalar()
		if !s.failed() {
			s.fail("the file holds JSON null, not an object")
		}
	default:
		if c == '"' || c == '[' || c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' {
			s.fail("the file holds a JSON value that is not an object")
		} else {
			s.fail("not JSON: unexpected " + quoteByte(c))
		}
	}
	return false
}

// int reads a number value as an int (0 if it is not one).
func (s *jsonScanner) int() int {
	if s.peek() == '"' {
		n, _ := strconv.Atoi(string(s.str()))
		return n
	}
	tok := s.scalar()
	n, _ := strconv.Atoi(string(tok))
	return n
}

// boolean reads true/false (anything else is skipped and false).
func (s *jsonScanner) boolean() bool {
	c := s.peek()
	if c == 't' || c == 'f' {
		return string(s.scalar()) == "true"
	}
	s.skip()
	return false
}

// stringMap reads an object of string values, calling fn for each; non-string
// values are skipped.
func (s *jsonScanner) stringMap(fn func(k, v []byte)) {
	if !s.enter('{') {
		return
	}
	first := true
	for s.more(&first, '}') {
		k := s.key()
		v, ok := s.strOrSkip()
		if ok && !s.failed() {
			fn(k, v)
		}
	}
}
