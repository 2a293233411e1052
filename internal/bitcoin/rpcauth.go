package bitcoin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// RPCAuth is an entry of bitcoind's -rpcauth option, "<user>:<salt>$<hash>", as
// Bitcoin Core's share/rpcauth/rpcauth.py writes it: hash is the hex HMAC-SHA256 of the
// password keyed with the salt string. bitcoind checks a password against it
// (src/httprpc.cpp, CheckUserAuthorized) without ever holding the password, so the line
// can sit in a pod's arguments; the random salt keeps equal passwords from giving equal
// lines.
type RPCAuth string

// Usernames that cannot work. Bitcoin Core splits an rpcauth entry and HTTP basic auth
// on ':'. A control character (a newline included) has no business in a command-line
// argument or a log line, and bytes that are not UTF-8 cannot pass through the API
// server's JSON unchanged. Anything else, '#', '$' and spaces included, works.
var (
	ErrUsernameEmpty   = errors.New("the RPC username is empty")
	ErrUsernameColon   = errors.New("the RPC username must not contain ':'")
	ErrUsernameControl = errors.New("the RPC username must not contain a control character")
	ErrUsernameUTF8    = errors.New("the RPC username must be valid UTF-8")
)

// CheckUsername returns one of the ErrUsername errors for a username that cannot work.
func CheckUsername(user string) error {
	switch {
	case user == "":
		return ErrUsernameEmpty
	case strings.Contains(user, ":"):
		return ErrUsernameColon
	case !utf8.ValidString(user):
		return ErrUsernameUTF8
	case strings.ContainsFunc(user, unicode.IsControl):
		return ErrUsernameControl
	}
	return nil
}

// NewRPCAuth returns an rpcauth entry for the credentials, with a fresh random salt of
// 16 bytes, as rpcauth.py uses.
func NewRPCAuth(user, password string) (RPCAuth, error) {
	if err := CheckUsername(user); err != nil {
		return "", err
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	return rpcAuth(user, hex.EncodeToString(salt), password), nil
}

// Matches reports whether the entry admits exactly these credentials. It lets a caller
// keep an entry, salt and all, for as long as the credentials do not change.
func (a RPCAuth) Matches(user, password string) bool {
	entryUser, saltHash, ok := strings.Cut(string(a), ":")
	if !ok || entryUser != user {
		return false
	}
	salt, _, ok := strings.Cut(saltHash, "$")
	return ok && hmac.Equal([]byte(a), []byte(rpcAuth(user, salt, password)))
}

func rpcAuth(user, salt, password string) RPCAuth {
	mac := hmac.New(sha256.New, []byte(salt))
	mac.Write([]byte(password))
	return RPCAuth(user + ":" + salt + "$" + hex.EncodeToString(mac.Sum(nil)))
}
