package render

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Error is a failure to render a network's chart. Its message is safe to log and to
// put in a condition: it names the values the chart refused and the spec field behind
// each, never a value's contents. Helm's own errors quote values, and one of them, the
// rpcauth entry, holds the username and a salted HMAC of the password.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

// specFields says which spec field, or which Secret, sets each chart value the
// operator passes, so that an error names what the user must fix.
var specFields = map[string]string{
	"nodes":                                "spec.nodes",
	"image":                                "spec.image",
	"chain":                                "spec.chain",
	"storage":                              "spec.storage",
	"resources":                            "spec.resources",
	"persistentVolumeClaimRetentionPolicy": "spec.persistentVolumeClaimRetentionPolicy",
	"podManagementPolicy":                  "spec.podManagementPolicy",
	"rpcAuth":                              "the username in the RPC credentials Secret",
}

// schemaLocation finds the values that Helm's schema validation refused ("at
// '/image': ..."). Only locations that are keys the operator passed are believed: a
// value could itself hold text of that shape.
var schemaLocation = regexp.MustCompile(`at '/([^'/]*)`)

// schemaError turns Helm's values-schema error into one that names the refused values
// and their spec fields, and drops the values and the schema Helm quotes.
func schemaError(err error, values map[string]any) *Error {
	var fields []string
	for _, m := range schemaLocation.FindAllStringSubmatch(err.Error(), -1) {
		if _, passed := values[m[1]]; passed && !slices.Contains(fields, m[1]) {
			fields = append(fields, m[1])
		}
	}
	if len(fields) == 0 {
		return &Error{"the bitcoin-network chart's values schema refuses the values the operator passed"}
	}
	slices.Sort(fields)
	var fix []string
	for _, f := range fields {
		fix = append(fix, fmt.Sprintf("%s (%s)", f, fieldOf(f)))
	}
	return &Error{"the bitcoin-network chart's values schema refuses " + strings.Join(fix, ", ")}
}

func fieldOf(value string) string {
	if f, ok := specFields[value]; ok {
		return f
	}
	return "the operator's settings"
}

// redacted returns err as an Error without the rpcauth entry in any form: whole, its
// salt and HMAC alone (hex, the same in every encoding), or its username.
func redacted(err error, rpcAuth string) *Error {
	msg := err.Error()
	if rpcAuth != "" {
		i := strings.LastIndex(rpcAuth, ":") // bitcoind's own split: the salt and HMAC follow the last ':'
		user, saltHMAC := rpcAuth[:max(i, 0)], rpcAuth[i+1:]
		msg = strings.ReplaceAll(msg, rpcAuth, "<rpcauth entry>")
		msg = strings.ReplaceAll(msg, saltHMAC, "<rpcauth entry>")
		if user != "" {
			msg = strings.ReplaceAll(msg, user, "<rpc username>")
		}
	}
	return &Error{msg}
}
