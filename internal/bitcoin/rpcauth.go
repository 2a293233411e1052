package bitcoin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// RPCAuth is an entry of bitcoind's -rpcauth option, "<user>:<salt>$<hash>", as
// Bitcoin Core's share/rpcauth/rpcauth.py writes it: hash is the hex HMAC-SHA256 of the
// password keyed with the salt string. bitcoind checks a password against it
// (src/httprpc.cpp, CheckUserAuthorized) without ever holding the password, so the line
// can sit in a pod's arguments; the random salt keeps equal passwords from giving equal
// lines.
type RPCAuth string

// ErrUsernameColon is returned for a username with a ':', which Bitcoin Core can neither
// parse in an rpcauth entry nor accept in HTTP basic auth.
var ErrUsernameColon = errors.New("the RPC username must not contain ':'")

// NewRPCAuth returns an rpcauth entry for the credentials, with a fresh random salt of
// 16 bytes, as rpcauth.py uses.
func NewRPCAuth(user, password string) (RPCAuth, error) {
	if strings.Contains(user, ":") {
		return "", ErrUsernameColon
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
