package bitcoin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// MaxResponseBytes bounds an RPC answer. Bitcoin Core's largest answer the operator
// asks for, getpeerinfo with a full table of 125 peers, is a few hundred KiB; a node
// that sends more is refused while the answer arrives, so what a pod sends never
// decides how much memory the operator needs.
const MaxResponseBytes = 2 << 20

// ErrResponseTooLarge is an answer longer than MaxResponseBytes.
var ErrResponseTooLarge = fmt.Errorf("response exceeds %d bytes: this is not Bitcoin Core answering", MaxResponseBytes)

// decodeResponse decodes a legacy (JSON-RPC 1.0) Bitcoin Core response from body into
// result, which may be nil, as it arrives: the result is decoded straight into its
// type, and no copy of the whole body is kept. Core sends RPC errors with HTTP 500
// (404 for an unknown method, 400 for a bad request) and a JSON body, so the body
// decides whatever the status.
func decodeResponse(status int, body io.Reader, result any) error {
	if status == http.StatusUnauthorized {
		return ErrUnauthorized
	}
	in := &responseReader{r: body, left: MaxResponseBytes + 1}
	err := decodeFields(json.NewDecoder(in), status, result)
	switch {
	case err == nil:
		return nil
	case in.err != nil: // the body could not be read, or was too long
		return in.err
	case errors.Is(err, errNotAnObject):
		return fmt.Errorf("response is not a JSON-RPC object (HTTP %d %s): %s",
			status, http.StatusText(status), quotePrefix(in.prefix))
	}
	return err
}

var errNotAnObject = errors.New("not a JSON object")

// decodeFields reads the response object's members. Keys are matched exactly, as
// Core writes them (encoding/json matches struct fields case-insensitively).
func decodeFields(dec *json.Decoder, status int, result any) error {
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errNotAnObject
	}
	var rpcErr error
	hasResult := false
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return errNotAnObject
		}
		switch key := t.(string); {
		case key == "error":
			if rpcErr, err = decodeError(dec); err != nil {
				return err
			}
		case key == "result" && status == http.StatusOK && result != nil:
			hasResult = true
			if err := dec.Decode(result); err != nil {
				return resultError(err)
			}
		default:
			hasResult = hasResult || key == "result"
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return errNotAnObject
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return errNotAnObject
	}
	if _, err := dec.Token(); err != io.EOF { // nothing after it
		return errNotAnObject
	}
	switch {
	case rpcErr != nil:
		return rpcErr
	case status != http.StatusOK:
		return fmt.Errorf("unexpected HTTP %d %s without an error object", status, http.StatusText(status))
	case !hasResult:
		return errors.New("response has no result")
	}
	return nil
}

// decodeError decodes the error member: null, or Core's error object.
func decodeError(dec *json.Decoder) (error, error) {
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, errNotAnObject
	}
	if string(raw) == "null" {
		return nil, nil
	}
	rpcErr := &RPCError{}
	if err := json.Unmarshal(raw, rpcErr); err != nil {
		return nil, fmt.Errorf("failed to decode error object %s: %w", quotePrefix(raw), err)
	}
	return rpcErr, nil
}

// resultError tells a result of the wrong type from a body that is not JSON.
func resultError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Errorf("failed to decode result: %w", err)
	}
	return errNotAnObject
}

// responseReader reads a response body up to its bound, keeps its first bytes for
// error messages, and records why reading failed.
type responseReader struct {
	r      io.Reader
	left   int64
	prefix []byte
	err    error
}

func (b *responseReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		b.err = ErrResponseTooLarge
		return 0, b.err
	}
	n, err := b.r.Read(p[:min(int64(len(p)), b.left)])
	b.left -= int64(n)
	if keep := min(n, prefixBytes+1-len(b.prefix)); keep > 0 {
		b.prefix = append(b.prefix, p[:keep]...)
	}
	switch {
	case b.left <= 0:
		b.err = ErrResponseTooLarge
		return n, b.err
	case err != nil && err != io.EOF:
		b.err = transportError(fmt.Errorf("failed to read response: %w", err))
	}
	return n, err
}
