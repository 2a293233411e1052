package dockerfile

import (
	"strings"
	"testing"
)

func TestParseLastStage(t *testing.T) {
	st, err := Parse(strings.NewReader(`ARG X
FROM golang AS builder
COPY a b ./
RUN go build
FROM scratch
WORKDIR /
LABEL a=b
COPY --from=builder /w/m .
COPY dir /dir/
USER 1:1
ENTRYPOINT ["/m"]
CMD ["x", "y"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if st.From != "scratch" || st.User != "1:1" || st.WorkingDir != "/" || st.Labels["a"] != "b" ||
		len(st.Copies) != 2 || st.Copies[0].From != "builder" || st.Copies[1].Dest != "/dir/" ||
		st.Entrypoint[0] != "/m" || st.Cmd[1] != "y" {
		t.Errorf("parsed %+v", st)
	}
}

// Anything not understood must fail, so that a comparison cannot miss it.
func TestParseRefusesWhatItDoesNotKnow(t *testing.T) {
	for _, df := range []string{
		"FROM scratch\nENTRYPOINT /m\n",
		"FROM scratch\nLABEL a=\"b c\"\n",
		"FROM scratch\nCOPY a b c/\n",
		"FROM scratch\nEXPOSE 80\n",
		"COPY a b\n",
	} {
		if _, err := Parse(strings.NewReader(df)); err == nil {
			t.Errorf("%q: no error", df)
		}
	}
}
