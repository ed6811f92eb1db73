package main

// The JSON side of rfcdrill's target protocol v1 (harness/targets/PROTOCOL.md): requests
// on stdin, one object per line; replies and events on stdout, one object per line.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

const protocolVersion = 1

// sockAddr is the protocol's address object.
type sockAddr struct {
	IP   string `json:"ip"`
	Port int    `json:"port"`
}

// pollFD is one entry of a poll request's fds.
type pollFD struct {
	FD     int      `json:"fd"`
	Events []string `json:"events"`
}

// request holds the fields of every op; each op reads the ones it takes.
type request struct {
	ID *int64 `json:"id"`
	Op string `json:"op"`

	// init
	IPVersion string                     `json:"ip_version"`
	LocalIP   string                     `json:"local_ip"`
	RemoteIP  string                     `json:"remote_ip"`
	PrefixLen *int                       `json:"prefix_len"`
	GatewayIP string                     `json:"gateway_ip"`
	MTU       int                        `json:"mtu"`
	Seed      int64                      `json:"seed"`
	Sysctls   map[string]json.RawMessage `json:"sysctls"`

	// time
	Packets *int64 `json:"packets"`
	ToUs    *int64 `json:"to_us"`

	// calls
	Family    string          `json:"family"`
	Type      string          `json:"type"`
	Nonblock  *bool           `json:"nonblock"`
	FD        *int            `json:"fd"`
	Addr      *sockAddr       `json:"addr"`
	Backlog   *int            `json:"backlog"`
	Count     *int            `json:"count"`
	Flags     []string        `json:"flags"`
	Data      *string         `json:"data"`
	How       string          `json:"how"`
	Level     string          `json:"level"`
	Name      string          `json:"name"`
	Value     json.RawMessage `json:"value"`
	FDs       []pollFD        `json:"fds"`
	TimeoutUs *int64          `json:"timeout_us"`
	Request   string          `json:"request"`
}

// reply is one outgoing message.
type reply map[string]any

// output writes messages to stdout. Only the adapter's main goroutine writes.
type output struct{ w *bufio.Writer }

func newOutput(w io.Writer) *output { return &output{w: bufio.NewWriter(w)} }

func (o *output) send(m reply) {
	b, err := json.Marshal(m)
	if err != nil {
		fatalf("encoding a reply: %v", err)
	}
	o.w.Write(b)
	o.w.WriteByte('\n')
	if err := o.w.Flush(); err != nil {
		fatalf("writing to stdout: %v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "rfcdrill-gvisor: "+format+"\n", args...)
	os.Exit(2)
}

// badRequest is a request the adapter cannot carry out at all; it becomes an
// {"id": N, "error": ...} reply.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error { return &badRequest{fmt.Sprintf(format, args...)} }

// scalar reads a sysctl value given either as a JSON string or as a bare number.
func scalar(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return strings.TrimSpace(s), nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), nil
	}
	return "", badf("value %s is neither a string nor a number", string(raw))
}

// ints reads a sysctl value of whitespace-separated integers ("4096 131072 6291456").
func ints(v string, want int) ([]int64, error) {
	fields := strings.Fields(v)
	if len(fields) != want {
		return nil, badf("value %q: want %d integers", v, want)
	}
	out := make([]int64, want)
	for i, f := range fields {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, badf("value %q: %q is not an integer", v, f)
		}
		out[i] = n
	}
	return out, nil
}
