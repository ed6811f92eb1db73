// Command rfcdrill-gvisor is an rfcdrill target adapter (protocol v1,
// harness/targets/PROTOCOL.md) for gVisor's netstack: it runs the stack in virtual time,
// feeds it the IP packets rfcdrill writes to the inherited packet descriptor, and
// carries out the socket calls rfcdrill asks for, as gVisor's sentry would.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// version names the gVisor sources this adapter is built against (Debian's
// golang-gvisor-gvisor-dev, the release-20221219 snapshot).
const version = "release-20221219"

type adapter struct {
	out      *output
	fd       int
	clock    *vclock
	stack    *stack.Stack
	link     *link
	injected int64 // packets read from the packet descriptor so far
	sockets  map[int]*sock
	pending  []*pendingCall
}

func main() {
	fdText := os.Getenv("RFCDRILL_PACKET_FD")
	if len(os.Args) > 1 {
		fdText = os.Args[1]
	}
	fd, err := strconv.Atoi(fdText)
	if err != nil || fd < 0 {
		fatalf("the packet descriptor's number must be in RFCDRILL_PACKET_FD (got %q)", fdText)
	}
	a := &adapter{out: newOutput(os.Stdout), fd: fd, sockets: map[int]*sock{}}
	a.out.send(hello())
	a.serve()
}

func hello() reply {
	return reply{
		"event": "hello", "protocol": protocolVersion, "name": "gvisor", "version": version,
		"capabilities": reply{
			"time":        "virtual",
			"ip_versions": []string{"ipv4", "ipv6"},
			"tcp_options": []string{"mss", "wscale", "sack", "timestamps"},
			"ip_options":  false,
			"calls":       callNames(),
			"sockopts":    sockoptNames(),
			"state":       stateNames,
			"sysctls":     sysctlNames(),
			// Settings netstack cannot change but always behaves as: it offers and
			// accepts timestamps and window scaling whenever it can (transport/tcp/connect.go
			// builds every SYN with TS: true and a window scale), and it has neither ECN
			// (gVisor issue 995, transport/tcp/endpoint.go) nor TCP Fast Open.
			"fixed_sysctls": reply{
				"net.ipv4.tcp_timestamps":     "1",
				"net.ipv4.tcp_window_scaling": "1",
				"net.ipv4.tcp_ecn":            "0",
				"net.ipv4.tcp_fastopen":       "0",
			},
		},
	}
}

// serve answers requests until stdin closes or a quit.
func (a *adapter) serve() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	line := 0
	for in.Scan() {
		line++
		var r request
		if err := json.Unmarshal(in.Bytes(), &r); err != nil {
			a.out.send(reply{"id": nil, "error": fmt.Sprintf("stdin line %d: not a JSON request: %v", line, err)})
			continue
		}
		if r.ID == nil {
			a.out.send(reply{"id": nil, "error": fmt.Sprintf("stdin line %d: request has no integer id", line)})
			continue
		}
		if r.Op == "quit" {
			a.out.send(reply{"id": *r.ID, "ok": true})
			os.Exit(0)
		}
		res, err := a.handle(&r)
		if err != nil {
			res = reply{"error": fmt.Sprintf("%s: %v", r.Op, err)}
		}
		if res != nil {
			res["id"] = *r.ID
			a.out.send(res)
		}
		a.checkLink()
	}
	if err := in.Err(); err != nil {
		fatalf("reading stdin: %v", err)
	}
}

// handle carries out one request; a nil reply means the request is pending.
func (a *adapter) handle(r *request) (reply, error) {
	if r.Op == "init" {
		return a.init(r)
	}
	if a.stack == nil {
		return nil, badf("the first request must be init")
	}
	switch r.Op {
	case "sync":
		if r.Packets == nil {
			return nil, badf("packets missing")
		}
		return a.sync(*r.Packets)
	case "advance":
		if r.ToUs == nil {
			return nil, badf("to_us missing")
		}
		return a.advance(fromMicros(*r.ToUs))
	case "sysctl":
		v, err := scalar(r.Value)
		if err != nil {
			return nil, err
		}
		if err := applySysctl(a.stack, r.Name, v); err != nil {
			return nil, err
		}
		return reply{"ok": true}, nil
	case "state":
		return a.state(r)
	}
	// A call sees every packet rfcdrill wrote before it.
	if err := a.drain(0); err != nil {
		return nil, err
	}
	res, err := a.call(r)
	a.settle()
	return res, err
}

func (a *adapter) init(r *request) (reply, error) {
	if a.stack != nil {
		return nil, badf("init was already done")
	}
	mtu := r.MTU
	if mtu == 0 {
		mtu = 1500
	}
	a.clock = newVClock()
	s, err := newStack(a.clock, r.Seed)
	if err != nil {
		return nil, err
	}
	a.link = newLink(a.fd, uint32(mtu))
	if err := configure(s, a.link, r); err != nil {
		return nil, err
	}
	for name, raw := range r.Sysctls {
		v, err := scalar(raw)
		if err != nil {
			return nil, badf("sysctl %s: %v", name, err)
		}
		if err := applySysctl(s, name, v); err != nil {
			return nil, err
		}
	}
	a.stack = s
	return reply{"ok": true}, nil
}

// drain injects the packets waiting on the packet descriptor, at least `atLeast` of
// them, and lets the stack process them.
func (a *adapter) drain(atLeast int64) error {
	n, err := a.link.readAvailable(atLeast)
	a.injected += n
	if n > 0 {
		a.settle()
	}
	return err
}

// settle is the processing barrier. gVisor hands each inbound segment to a dispatcher
// goroutine (transport/tcp/dispatcher.go) and runs a timer scheduled for "now" on a
// goroutine of its own (faketime.ManualClock). Advance(0) waits for the latter.
// Stack.Pause returns only when every processor has found its queue empty at its
// pause check, so every segment queued before it has been processed, and its packets
// written (the link writes synchronously). Processing can queue work on another
// processor that has already paused, so the barrier repeats until a round changes
// none of the stack's counters.
func (a *adapter) settle() {
	for {
		before := a.activity()
		a.clock.Advance(0)
		a.stack.Pause()
		a.stack.Resume()
		if a.activity() == before {
			return
		}
	}
}

func (a *adapter) activity() [6]uint64 {
	t := a.stack.Stats().TCP
	return [6]uint64{
		a.link.sent.Load(), t.SegmentsSent.Value(), t.PassiveConnectionOpenings.Value(),
		t.ActiveConnectionOpenings.Value(), t.EstablishedResets.Value(), t.EstablishedClosed.Value(),
	}
}

// checkLink ends the adapter if a packet could not be written to the packet
// descriptor: rfcdrill has gone, or the descriptor is broken.
func (a *adapter) checkLink() {
	if a.link == nil {
		return
	}
	if err, ok := a.link.writeErr.Load().(error); ok {
		fatalf("%v", err)
	}
}

// timeReply is the reply to sync and advance: the clock and the next due time.
func (a *adapter) timeReply() reply {
	res := reply{"now_us": micros(a.clock.Now()), "next_us": nil}
	if t, ok := a.nextDue(); ok {
		res["next_us"] = ceilMicros(t)
	}
	return res
}

// nextDue is the earliest of the stack's armed timers and the adapter's own deadlines
// (poll timeouts, lingering closes).
func (a *adapter) nextDue() (time.Time, bool) {
	t, ok := a.clock.next()
	for _, p := range a.pending {
		if p.deadline != nil && (!ok || p.deadline.Before(t)) {
			t, ok = *p.deadline, true
		}
	}
	return t, ok
}

// sync (PROTOCOL.md section 3): inject until `packets` in all have been read, let the
// stack finish, complete whatever calls that completed, reply.
func (a *adapter) sync(packets int64) (reply, error) {
	if packets < a.injected {
		return nil, badf("packets %d is fewer than the %d already read", packets, a.injected)
	}
	if err := a.drain(packets - a.injected); err != nil {
		return nil, err
	}
	a.settle()
	a.completePending()
	return a.timeReply(), nil
}

// maxSteps bounds an advance, against a timer that keeps re-arming at the same time.
const maxSteps = 1_000_000

// advance (PROTOCOL.md section 3) moves the clock to each due time up to `to` in
// turn, letting the stack finish and completing calls after each.
func (a *adapter) advance(to time.Time) (reply, error) {
	if to.Before(a.clock.Now()) {
		return nil, badf("to_us %d is before now (%d)", micros(to), micros(a.clock.Now()))
	}
	if err := a.drain(0); err != nil {
		return nil, err
	}
	a.completePending()
	for step := 0; ; step++ {
		due, ok := a.nextDue()
		if !ok || due.After(to) {
			break
		}
		if step == maxSteps {
			return nil, badf("a timer kept firing at %d us", micros(due))
		}
		if d := due.Sub(a.clock.Now()); d > 0 {
			a.clock.Advance(d)
		}
		a.settle()
		a.completePending()
	}
	a.clock.Advance(to.Sub(a.clock.Now()))
	a.settle()
	a.completePending()
	return a.timeReply(), nil
}
