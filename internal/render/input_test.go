package render

import (
	"errors"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
)

// The rpcauth entry holds the username as the user wrote it: whatever it holds must
// stay inside the one argument, and the rendered YAML must mean what it meant.
func TestRPCAuthEntryIsOneArgumentWhateverTheUsername(t *testing.T) {
	r := mustRenderer(t)
	plain := bitcoind(mustRender(t, network("net", 1, bitcoinv1alpha1.Regtest)).StatefulSet).Args
	for _, user := range []string{
		"al #ice", "a$b", "$", "a b  c", `quo"te`, `back\slash`, "'single'", "-rpcpassword=x",
		"x\" - -rpcpassword=y", "{{ .Values.image }}", "ünï cödé", "a: b", "key: value #",
	} {
		if bitcoin.CheckUsername(user) != nil {
			continue // "a: b" and "key: value #" are refused before the chart
		}
		t.Run(user, func(t *testing.T) {
			g := NewWithT(t)
			entry, err := bitcoin.NewRPCAuth(user, "Passw0rd")
			g.Expect(err).NotTo(HaveOccurred())
			objs, err := r.Render(network("net", 1, bitcoinv1alpha1.Regtest), Settings{RPCAuth: string(entry)})
			g.Expect(err).NotTo(HaveOccurred())
			args := bitcoind(objs.StatefulSet).Args
			g.Expect(args).To(HaveLen(len(plain)+1), "exactly one argument more than without credentials")
			g.Expect(args).To(ContainElement("-rpcauth="+string(entry)), "the entry byte for byte")
			g.Expect(bitcoin.RPCAuth(strings.TrimPrefix(rpcauthArg(args), "-rpcauth=")).Matches(user, "Passw0rd")).To(BeTrue())
		})
	}
}

func rpcauthArg(args []string) string {
	for _, a := range args {
		if strings.HasPrefix(a, "-rpcauth=") {
			return a
		}
	}
	return ""
}

// The chart works without the operator too: its schema refuses what bitcoind would
// split differently (a ':' in the user) and control characters, and says so without
// quoting the entry or dumping the schema.
func TestChartSchemaRefusesUsernamesBitcoindCannotCarry(t *testing.T) {
	const saltHMAC = "cb77f0957de88ff388cf817ddbc7273$c9ce7cb2de2ad5aadae1449ad1e62baa38d98fced30a7cd2eae656cab574b678"
	r := mustRenderer(t)
	for _, user := range []string{"a:b", "a\nb", "a\tb", "a\rb", "a\x7fb", "a\u0085b", "a\x00b", ""} {
		entry := user + ":" + saltHMAC
		_, err := r.Render(network("net", 1, ""), Settings{RPCAuth: entry})
		g := NewWithT(t)
		g.Expect(err).To(HaveOccurred(), "user %q", user)
		var renderErr *Error
		g.Expect(errors.As(err, &renderErr)).To(BeTrue())
		g.Expect(err.Error()).To(Equal("the bitcoin-network chart's values schema refuses rpcAuth (the username in the RPC credentials Secret)"))
	}
	_, err := r.Render(network("net", 1, ""), Settings{RPCAuth: "a$b:" + saltHMAC})
	NewWithT(t).Expect(err).NotTo(HaveOccurred(), "bitcoind splits only the last field on '$'")
}

func TestSchemaErrorsNameOnlyValuesTheOperatorPassed(t *testing.T) {
	g := NewWithT(t)
	// A value may hold text shaped like a location: only passed keys are believed.
	helmErr := errors.New(`bitcoin-network:
- at '/rpcAuth': 'x at '/secretstuff' y:salt$hmac' does not match pattern '^...$'
- at '/image': '' is too short`)
	err := schemaError(helmErr, map[string]any{"rpcAuth": "", "image": ""})
	g.Expect(err.Error()).To(Equal("the bitcoin-network chart's values schema refuses image (spec.image), rpcAuth (the username in the RPC credentials Secret)"))

	err = schemaError(errors.New("something else"), map[string]any{})
	g.Expect(err.Error()).To(Equal("the bitcoin-network chart's values schema refuses the values the operator passed"))
}

func TestRedactedErrorsCarryNoPartOfTheEntry(t *testing.T) {
	entry := "someone:cb77f0957de88ff388cf817ddbc7273$c9ce7cb2de2ad5aadae1449ad1e62baa38d98fced30a7cd2eae656cab574b678"
	for _, text := range []string{
		"template failed at -rpcauth=" + entry,
		`yaml: "-rpcauth=\"someone\":cb77f0957de88ff388cf817ddbc7273$c9ce7cb2de2ad5aadae1449ad1e62baa38d98fced30a7cd2eae656cab574b678"`,
	} {
		msg := redacted(errors.New(text), entry).Error()
		g := NewWithT(t)
		g.Expect(msg).NotTo(ContainSubstring("someone"))
		g.Expect(msg).NotTo(ContainSubstring("c9ce7cb2"))
		g.Expect(msg).NotTo(ContainSubstring("cb77f09"))
	}
}
