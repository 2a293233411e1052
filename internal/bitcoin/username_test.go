package bitcoin

import (
	"errors"
	"testing"
)

func TestCheckUsername(t *testing.T) {
	for user, want := range map[string]error{
		"alice":    nil,
		"al #ice":  nil,
		"a$b":      nil,
		"a b":      nil,
		"ünï":      nil,
		"":         ErrUsernameEmpty,
		"a:b":      ErrUsernameColon,
		"a\nb":     ErrUsernameControl,
		"a\tb":     ErrUsernameControl,
		"a\x7fb":   ErrUsernameControl,
		"a\u0085b": ErrUsernameControl,
		"a\xffb":   ErrUsernameUTF8,
	} {
		if got := CheckUsername(user); !errors.Is(got, want) || (want == nil && got != nil) {
			t.Errorf("CheckUsername(%q) = %v, want %v", user, got, want)
		}
		if _, err := NewRPCAuth(user, "p"); (err == nil) != (want == nil) {
			t.Errorf("NewRPCAuth(%q) err = %v, want %v", user, err, want)
		}
	}
}
