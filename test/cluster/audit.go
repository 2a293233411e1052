package cluster

import (
	"bufio"
	"encoding/json"
	"os"
	"time"
)

// AuditEvent is one completed request of the API server's audit log, which records the
// write requests of Options.AuditUsers and nothing else.
type AuditEvent struct {
	Verb string `json:"verb"`
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	Received time.Time `json:"requestReceivedTimestamp"`
}

// OperatorWrites returns the operator's write requests received in [from, to], from
// the audit log; a zero to means no upper bound.
func (c *Cluster) OperatorWrites(from, to time.Time) ([]AuditEvent, error) {
	return c.WritesBy(OperatorUser, from, to)
}

// WritesBy returns the write requests of user (one of Options.AuditUsers) received in
// [from, to], from the audit log; a zero to means no upper bound.
func (c *Cluster) WritesBy(user string, from, to time.Time) ([]AuditEvent, error) {
	f, err := os.Open(c.AuditLog)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []AuditEvent
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 1<<20), 4<<20)
	for scanner.Scan() {
		var e struct {
			AuditEvent
			Stage string `json:"stage"`
		}
		if json.Unmarshal(scanner.Bytes(), &e) != nil || e.Stage != "ResponseComplete" || e.User.Username != user ||
			e.Received.Before(from) || !to.IsZero() && e.Received.After(to) {
			continue
		}
		out = append(out, e.AuditEvent)
	}
	return out, scanner.Err()
}
