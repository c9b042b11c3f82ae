package envvars

import "strings"

// Expand replaces $(VAR) references in s with mapping's values, as the kubelet's
// third_party/forked/golang/expansion does: "$$" is an escaped "$", a reference mapping does not
// know and a malformed one (no closing parenthesis) stay as written, and any other "$" is kept.
func Expand(s string, mapping func(string) (string, bool)) string {
	var b strings.Builder
	checkpoint := 0
	for cursor := 0; cursor < len(s); cursor++ {
		if s[cursor] != '$' || cursor+1 >= len(s) {
			continue
		}
		b.WriteString(s[checkpoint:cursor])
		read, advance, isVar := tryReadVariableName(s[cursor+1:])
		if isVar {
			if v, ok := mapping(read); ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + read + ")")
			}
		} else {
			b.WriteString(read)
		}
		cursor += advance
		checkpoint = cursor + 1
	}
	return b.String() + s[checkpoint:]
}

// tryReadVariableName reads a name after a '$': "(NAME)" is a variable, "$" an escape; the
// result is what to write and how many bytes were consumed.
func tryReadVariableName(input string) (string, int, bool) {
	switch input[0] {
	case '$':
		return "$", 1, false
	case '(':
		for i := 1; i < len(input); i++ {
			if input[i] == ')' {
				return input[1:i], i + 1, true
			}
		}
		return "$(", 1, false
	}
	return "$" + input[:1], 1, false
}
