// Package dockerfile reads what a Dockerfile's last stage says about its image: the
// base, entrypoint, command, user, working directory, labels and copied paths. It knows
// the directives this project's Dockerfiles use, not Docker's whole grammar (no
// escapes, no ARG expansion, no heredocs), and says so when it meets anything else, so
// that a test comparing a Dockerfile with a built image cannot pass by missing a line.
package dockerfile

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Copy is one COPY of the last stage.
type Copy struct {
	From      string // the --from stage, if any
	Src, Dest string
}

// Stage is what the last stage of a Dockerfile declares.
type Stage struct {
	From       string
	Entrypoint []string
	Cmd        []string
	User       string
	WorkingDir string
	Labels     map[string]string
	Copies     []Copy
	Runs       [][]string
}

// Parse reads a Dockerfile and returns its last stage. Earlier stages (a builder) are
// skipped: only the last one is the image.
func Parse(r io.Reader) (*Stage, error) {
	type line struct {
		n             int
		keyword, rest string
	}
	var from string
	var stage []line
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		keyword, rest, _ := strings.Cut(text, " ")
		keyword, rest = strings.ToUpper(keyword), strings.TrimSpace(rest)
		switch {
		case keyword == "FROM":
			from, stage = strings.Fields(rest)[0], nil
		case from == "" && keyword != "ARG":
			return nil, fmt.Errorf("line %d: %s before FROM", n, keyword)
		default:
			stage = append(stage, line{n, keyword, rest})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if from == "" {
		return nil, fmt.Errorf("no FROM")
	}
	st := &Stage{From: from, Labels: map[string]string{}}
	for _, l := range stage {
		if err := st.apply(l.keyword, l.rest); err != nil {
			return nil, fmt.Errorf("line %d: %w", l.n, err)
		}
	}
	return st, nil
}

func (st *Stage) apply(keyword, rest string) (err error) {
	switch keyword {
	case "ENTRYPOINT":
		st.Entrypoint, err = execForm(rest)
	case "CMD":
		st.Cmd, err = execForm(rest)
	case "RUN":
		var run []string
		run, err = execForm(rest)
		st.Runs = append(st.Runs, run)
	case "USER":
		st.User = rest
	case "WORKDIR":
		st.WorkingDir = rest
	case "LABEL":
		err = st.label(rest)
	case "COPY":
		err = st.copy(rest)
	case "ARG":
	default:
		err = fmt.Errorf("%s is not understood here", keyword)
	}
	return err
}

// execForm reads the JSON form of ENTRYPOINT, CMD and RUN; the shell form would need
// a shell in the image, which none of this project's images has.
func execForm(rest string) ([]string, error) {
	var args []string
	if err := json.Unmarshal([]byte(rest), &args); err != nil {
		return nil, fmt.Errorf("only the exec (JSON) form is understood here: %q", rest)
	}
	return args, nil
}

// label reads one key=value per LABEL line, the form operator-sdk writes.
func (st *Stage) label(rest string) error {
	k, v, ok := strings.Cut(rest, "=")
	if !ok || strings.ContainsAny(k, " \"") || strings.ContainsAny(v, " \"") {
		return fmt.Errorf("only LABEL key=value is understood here: %q", rest)
	}
	st.Labels[k] = v
	return nil
}

func (st *Stage) copy(rest string) error {
	var c Copy
	fields := strings.Fields(rest)
	for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
		from, ok := strings.CutPrefix(fields[0], "--from=")
		if !ok {
			return fmt.Errorf("COPY flag %s is not understood here", fields[0])
		}
		c.From, fields = from, fields[1:]
	}
	if len(fields) != 2 {
		return fmt.Errorf("only COPY of one source is understood here: %q", rest)
	}
	c.Src, c.Dest = fields[0], fields[1]
	st.Copies = append(st.Copies, c)
	return nil
}
