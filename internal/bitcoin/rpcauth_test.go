package bitcoin

import (
	"errors"
	"strings"
	"testing"
)

// The expected line is what Bitcoin Core's share/rpcauth/rpcauth.py computes for this
// salt: hmac.new(salt.encode(), password.encode(), "SHA256").hexdigest().
func TestRPCAuthFormat(t *testing.T) {
	got := rpcAuth("alice", "cb77f0957de88ff388cf817ddbc7273", "secret")
	want := RPCAuth("alice:cb77f0957de88ff388cf817ddbc7273$c9ce7cb2de2ad5aadae1449ad1e62baa38d98fced30a7cd2eae656cab574b678")
	if got != want {
		t.Fatalf("rpcAuth = %q, want %q", got, want)
	}
}

func TestNewRPCAuthSaltsEveryEntry(t *testing.T) {
	a, err := NewRPCAuth("alice", "secret")
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewRPCAuth("alice", "secret")
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("two entries for the same password are equal (%q): the salt is not random", a)
	}
	if strings.Contains(string(a), "secret") {
		t.Fatalf("entry %q contains the password", a)
	}
}

func TestRPCAuthMatches(t *testing.T) {
	entry, err := NewRPCAuth("alice", "secret")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user, password string
		want           bool
	}{
		{"alice", "secret", true},
		{"alice", "other", false},
		{"bob", "secret", false},
		{"", "", false},
	} {
		if got := entry.Matches(tc.user, tc.password); got != tc.want {
			t.Errorf("Matches(%q, %q) = %v, want %v", tc.user, tc.password, got, tc.want)
		}
	}
	for _, bad := range []RPCAuth{"", "alice", "alice:nosalt", "alice:salt$"} {
		if bad.Matches("alice", "secret") {
			t.Errorf("malformed entry %q matches", bad)
		}
	}
}

func TestNewRPCAuthRefusesColon(t *testing.T) {
	if _, err := NewRPCAuth("ali:ce", "secret"); !errors.Is(err, ErrUsernameColon) {
		t.Fatalf("err = %v, want ErrUsernameColon", err)
	}
}
