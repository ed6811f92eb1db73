package main

// The socket calls of PROTOCOL.md section 4, each as gVisor's sentry performs the
// syscall over its tcpip.Endpoint (pkg/sentry/socket/netstack/netstack.go and
// pkg/sentry/syscalls/linux/sys_socket.go).

import (
	"bytes"
	"encoding/hex"
	"net"
	"sort"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/syserr"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

type sock struct {
	ep       tcpip.Endpoint
	wq       *waiter.Queue
	inet6    bool
	nonblock bool
}

// pendingCall is a blocking call that could not complete at once. try is called after
// every processing step of a sync or advance; it returns the final reply once the call
// completes. A call with a deadline (a poll timeout, a lingering close) completes at
// the latest when the virtual clock reaches it.
type pendingCall struct {
	id       int64
	deadline *time.Time
	try      func(now time.Time) reply
}

// maxListenBacklog is the sentry's clamp on listen(2)'s backlog (sys_socket.go).
const maxListenBacklog = 1024

// calls maps the ops that take no descriptor to their implementations.
var calls = map[string]func(*adapter, *request, int64) (reply, error){
	"socket": (*adapter).socket,
	"poll":   (*adapter).poll,
}

// fdCalls maps the ops on one descriptor to their implementations; the descriptor is
// looked up first, and one that is not open gives EBADF.
var fdCalls = map[string]func(*adapter, *sock, *request, int64) (reply, error){
	"bind":        (*adapter).bind,
	"listen":      (*adapter).listen,
	"accept":      (*adapter).accept,
	"connect":     (*adapter).connect,
	"read":        (*adapter).read,
	"write":       (*adapter).write,
	"shutdown":    (*adapter).shutdown,
	"close":       (*adapter).close,
	"setsockopt":  (*adapter).setsockopt,
	"getsockopt":  (*adapter).getsockopt,
	"fcntl":       (*adapter).fcntl,
	"getsockname": (*adapter).getsockname,
	"getpeername": (*adapter).getpeername,
	"ioctl":       (*adapter).ioctl,
}

func callNames() []string {
	names := []string{"state"}
	for n := range calls {
		names = append(names, n)
	}
	for n := range fdCalls {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (a *adapter) call(r *request) (reply, error) {
	if h, known := calls[r.Op]; known {
		return h(a, r, *r.ID)
	}
	h, known := fdCalls[r.Op]
	if !known {
		return nil, badf("unknown op")
	}
	s, bad := a.sock(r)
	if bad != nil {
		return bad, nil
	}
	return h(a, s, r, *r.ID)
}

// completePending retries every pending call, in the order they were made, until a
// round completes none; the final replies go out as they complete.
func (a *adapter) completePending() {
	for progress := true; progress; {
		progress = false
		now := a.clock.Now()
		kept := a.pending[:0]
		for _, p := range a.pending {
			if res := p.try(now); res != nil {
				res["id"] = p.id
				a.out.send(res)
				progress = true
				continue
			}
			kept = append(kept, p)
		}
		a.pending = kept
		if progress {
			a.settle()
		}
	}
}

// block answers a call that must wait: {"pending": true} now, the final reply later.
func (a *adapter) block(id int64, deadline *time.Time, try func(time.Time) reply) (reply, error) {
	a.pending = append(a.pending, &pendingCall{id: id, deadline: deadline, try: try})
	return reply{"pending": true}, nil
}

// untilDone answers with attempt's reply if it is final, and otherwise blocks, retrying
// attempt until it is.
func (a *adapter) untilDone(id int64, attempt func() (reply, bool)) (reply, error) {
	if res, final := attempt(); final {
		return res, nil
	}
	return a.block(id, nil, func(time.Time) reply {
		if res, final := attempt(); final {
			return res
		}
		return nil
	})
}

func ok(ret int) reply { return reply{"ret": ret} }

func errnoReply(e unix.Errno) reply { return reply{"ret": -1, "errno": unix.ErrnoName(e)} }

// fail is the reply to a failed call, errno as the sentry translates the netstack error.
func fail(err tcpip.Error) reply {
	return errnoReply(unix.Errno(syserr.TranslateNetstackError(err).ToLinux()))
}

func result(err tcpip.Error) reply {
	if err == nil {
		return ok(0)
	}
	return fail(err)
}

func (a *adapter) sock(r *request) (*sock, reply) {
	if r.FD == nil || a.sockets[*r.FD] == nil {
		return nil, errnoReply(unix.EBADF)
	}
	return a.sockets[*r.FD], nil
}

// lowestFree is the descriptor a process would get: the lowest one not in use, from 3.
func (a *adapter) lowestFree() int {
	fd := 3
	for a.sockets[fd] != nil {
		fd++
	}
	return fd
}

// address converts the protocol's address for the socket's family; an IPv4 address on
// an AF_INET6 socket becomes IPv4-mapped, as the sentry's mapFamily does.
func (s *sock) address(a *sockAddr) (tcpip.FullAddress, error) {
	if a == nil {
		return tcpip.FullAddress{}, badf("addr missing")
	}
	full := tcpip.FullAddress{Port: uint16(a.Port)}
	if a.IP == "" {
		return full, nil
	}
	ip := net.ParseIP(a.IP)
	if ip == nil {
		return full, badf("addr %q is not an IP address", a.IP)
	}
	if s.inet6 {
		full.Addr = tcpip.Address(ip.To16())
	} else if v4 := ip.To4(); v4 != nil {
		full.Addr = tcpip.Address(v4)
	} else {
		return full, badf("addr %q is not IPv4 on an AF_INET socket", a.IP)
	}
	if ip.IsUnspecified() {
		full.Addr = ""
	}
	return full, nil
}

func (s *sock) addrReply(f tcpip.FullAddress) sockAddr {
	b := []byte(f.Addr)
	switch {
	case len(b) == 0 && s.inet6:
		return sockAddr{IP: "::", Port: int(f.Port)}
	case len(b) == 0:
		return sockAddr{IP: "0.0.0.0", Port: int(f.Port)}
	case s.inet6 && (len(b) == 4 || net.IP(b).To4() != nil):
		return sockAddr{IP: "::ffff:" + net.IP(b).To4().String(), Port: int(f.Port)}
	}
	return sockAddr{IP: net.IP(b).String(), Port: int(f.Port)}
}

func (a *adapter) socket(r *request, _ int64) (reply, error) {
	var proto tcpip.NetworkProtocolNumber
	switch r.Family {
	case "AF_INET":
		proto = ipv4.ProtocolNumber
	case "AF_INET6":
		proto = ipv6.ProtocolNumber
	default:
		return errnoReply(unix.EAFNOSUPPORT), nil
	}
	if r.Type != "SOCK_STREAM" {
		return nil, badf("type %q: this adapter makes TCP sockets only", r.Type)
	}
	wq := &waiter.Queue{}
	ep, err := a.stack.NewEndpoint(tcp.ProtocolNumber, proto, wq)
	if err != nil {
		return fail(err), nil
	}
	return a.adopt(ep, wq, r.Family == "AF_INET6", r.Nonblock != nil && *r.Nonblock), nil
}

// adopt gives an endpoint a descriptor. The sentry's netstack.New enables Nagle's
// algorithm on every stream socket it wraps, accepted ones included.
func (a *adapter) adopt(ep tcpip.Endpoint, wq *waiter.Queue, inet6, nonblock bool) reply {
	ep.SocketOptions().SetDelayOption(true)
	fd := a.lowestFree()
	a.sockets[fd] = &sock{ep: ep, wq: wq, inet6: inet6, nonblock: nonblock}
	return ok(fd)
}

func (a *adapter) bind(s *sock, r *request, _ int64) (reply, error) {
	addr, err := s.address(r.Addr)
	if err != nil {
		return nil, err
	}
	return result(s.ep.Bind(addr)), nil
}

// listen passes backlog+1, clamped as the sentry clamps it: gVisor's accept queue holds
// `backlog` connections, Linux's one more (sys_socket.go Listen).
func (a *adapter) listen(s *sock, r *request, _ int64) (reply, error) {
	if r.Backlog == nil {
		return nil, badf("backlog missing")
	}
	backlog := uint32(*r.Backlog) // the sentry takes it as unsigned
	if backlog > maxListenBacklog {
		backlog = maxListenBacklog
	}
	return result(s.ep.Listen(int(backlog) + 1)), nil
}

func (a *adapter) accept(s *sock, r *request, id int64) (reply, error) {
	return a.untilDone(id, func() (reply, bool) {
		var peer tcpip.FullAddress
		ep, wq, err := s.ep.Accept(&peer)
		if _, blocked := err.(*tcpip.ErrWouldBlock); blocked {
			return fail(err), s.nonblock
		}
		if err != nil {
			return fail(err), true
		}
		res := a.adopt(ep, wq, s.inet6, false)
		res["addr"] = s.addrReply(peer)
		return res, true
	})
}

// connect: a blocking connect waits until the endpoint is writable, then calls Connect
// again for the outcome, as the sentry's Socket.Connect does.
func (a *adapter) connect(s *sock, r *request, id int64) (reply, error) {
	addr, err := s.address(r.Addr)
	if err != nil {
		return nil, err
	}
	first := s.ep.Connect(addr)
	if _, none := first.(*tcpip.ErrNoPortAvailable); none {
		return errnoReply(unix.EADDRNOTAVAIL), nil
	}
	if s.nonblock {
		return result(first), nil
	}
	switch first.(type) {
	case *tcpip.ErrConnectStarted, *tcpip.ErrAlreadyConnecting:
	default:
		return result(first), nil
	}
	return a.untilDone(id, func() (reply, bool) {
		if s.ep.Readiness(waiter.WritableEvents) == 0 {
			return nil, false
		}
		return result(s.ep.Connect(addr)), true
	})
}

func hasFlag(flags []string, f string) bool {
	for _, x := range flags {
		if x == f {
			return true
		}
	}
	return false
}

// read follows the sentry's RecvMsg: MSG_WAITALL waits for `count` octets unless the
// stream ends or fails, and an error after some data returns the data. MSG_OOB is
// accepted and ignored, as by the sentry (gVisor has no urgent data).
func (a *adapter) read(s *sock, r *request, id int64) (reply, error) {
	if r.Count == nil || *r.Count < 0 {
		return nil, badf("count missing or negative")
	}
	count := *r.Count
	peek := hasFlag(r.Flags, "MSG_PEEK")
	dontWait := s.nonblock || hasFlag(r.Flags, "MSG_DONTWAIT")
	waitAll := hasFlag(r.Flags, "MSG_WAITALL")
	var got bytes.Buffer
	attempt := func() (reply, bool) {
		if count == 0 {
			return reply{"ret": 0, "data": ""}, true
		}
		w := &tcpip.LimitedWriter{W: &got, N: int64(count - got.Len())}
		if peek {
			got.Reset()
			w.N = int64(count)
		}
		_, err := s.ep.Read(w, tcpip.ReadOptions{Peek: peek})
		done := func() reply { return reply{"ret": got.Len(), "data": hex.EncodeToString(got.Bytes())} }
		switch err.(type) {
		case nil:
			return done(), dontWait || !waitAll || got.Len() >= count
		case *tcpip.ErrWouldBlock:
			if got.Len() > 0 && (dontWait || !waitAll) {
				return done(), true
			}
			return fail(err), dontWait
		default:
			if got.Len() > 0 {
				return done(), true
			}
			if t := syserr.TranslateNetstackError(err); t == syserr.ErrClosedForReceive {
				return done(), true // end of stream: read returns 0
			}
			return fail(err), true
		}
	}
	return a.untilDone(id, attempt)
}

// write follows the sentry's SendMsg: a blocking write takes all the data, waiting for
// room, unless an error stops it; a partial count is returned as a success. MSG_OOB is
// refused with EINVAL as by the sentry's sendto.
func (a *adapter) write(s *sock, r *request, id int64) (reply, error) {
	if r.Data == nil {
		return nil, badf("data missing")
	}
	data, err := hex.DecodeString(*r.Data)
	if err != nil {
		return nil, badf("data is not hex: %v", err)
	}
	if hasFlag(r.Flags, "MSG_OOB") {
		return errnoReply(unix.EINVAL), nil
	}
	dontWait := s.nonblock || hasFlag(r.Flags, "MSG_DONTWAIT")
	opts := tcpip.WriteOptions{More: hasFlag(r.Flags, "MSG_MORE")}
	total := 0
	attempt := func() (reply, bool) {
		n, err := s.ep.Write(bytes.NewReader(data[total:]), opts)
		total += int(n)
		_, blocked := err.(*tcpip.ErrWouldBlock)
		switch {
		case err == nil && total == len(data):
			return ok(total), true
		case err != nil && !blocked, dontWait:
			if total > 0 {
				return ok(total), true
			}
			return fail(err), true
		}
		return nil, false
	}
	return a.untilDone(id, attempt)
}

func (a *adapter) shutdown(s *sock, r *request, _ int64) (reply, error) {
	var f tcpip.ShutdownFlags
	switch r.How {
	case "SHUT_RD":
		f = tcpip.ShutdownRead
	case "SHUT_WR":
		f = tcpip.ShutdownWrite
	case "SHUT_RDWR":
		f = tcpip.ShutdownRead | tcpip.ShutdownWrite
	default:
		return errnoReply(unix.EINVAL), nil
	}
	return result(s.ep.Shutdown(f)), nil
}

// close follows the sentry's Socket.Release: Close, then, with SO_LINGER on and a
// non-zero time on a blocking socket, wait until the endpoint reports HUP or ERR (it has
// left FIN-WAIT-1, CLOSING and LAST-ACK) or the linger time passes. SO_LINGER with
// time 0 makes Close itself reset the connection.
func (a *adapter) close(s *sock, r *request, id int64) (reply, error) {
	delete(a.sockets, *r.FD)
	s.ep.Close()
	linger := s.ep.SocketOptions().GetLinger()
	if !linger.Enabled || linger.Timeout == 0 || s.nonblock {
		return ok(0), nil
	}
	deadline := a.clock.Now().Add(linger.Timeout)
	try := func(now time.Time) reply {
		if s.ep.Readiness(waiter.EventHUp|waiter.EventErr) != 0 || !now.Before(deadline) {
			return ok(0)
		}
		return nil
	}
	a.settle()
	if res := try(a.clock.Now()); res != nil {
		return res, nil
	}
	return a.block(id, &deadline, try)
}

func (a *adapter) fcntl(s *sock, r *request, _ int64) (reply, error) {
	if r.Nonblock != nil {
		s.nonblock = *r.Nonblock
	}
	return reply{"ret": 0, "nonblock": s.nonblock}, nil
}

func (a *adapter) getsockname(s *sock, _ *request, _ int64) (reply, error) {
	return a.name(s, tcpip.Endpoint.GetLocalAddress)
}

func (a *adapter) getpeername(s *sock, _ *request, _ int64) (reply, error) {
	return a.name(s, tcpip.Endpoint.GetRemoteAddress)
}

func (a *adapter) name(s *sock, get func(tcpip.Endpoint) (tcpip.FullAddress, tcpip.Error)) (reply, error) {
	addr, err := get(s.ep)
	if err != nil {
		return fail(err), nil
	}
	return reply{"ret": 0, "addr": s.addrReply(addr)}, nil
}

// ioctl: SIOCINQ and SIOCOUTQ as the sentry's TIOCINQ/TIOCOUTQ; gVisor has no
// SIOCATMARK, and the sentry answers it with ENOTTY.
func (a *adapter) ioctl(s *sock, r *request, _ int64) (reply, error) {
	var opt tcpip.SockOptInt
	switch r.Request {
	case "SIOCINQ":
		opt = tcpip.ReceiveQueueSizeOption
	case "SIOCOUTQ":
		opt = tcpip.SendQueueSizeOption
	case "SIOCATMARK":
		return errnoReply(unix.ENOTTY), nil
	default:
		return nil, badf("request %q is not one this adapter knows", r.Request)
	}
	v, err := s.ep.GetSockOptInt(opt)
	if err != nil {
		return fail(err), nil
	}
	return reply{"ret": 0, "value": v}, nil
}

// pollEvents maps poll(2)'s names onto waiter's masks, which have poll's values.
var pollEvents = []struct {
	name string
	mask waiter.EventMask
}{
	{"POLLIN", waiter.EventIn}, {"POLLPRI", waiter.EventPri}, {"POLLOUT", waiter.EventOut},
	{"POLLERR", waiter.EventErr}, {"POLLHUP", waiter.EventHUp},
	{"POLLRDNORM", waiter.EventRdNorm}, {"POLLWRNORM", waiter.EventWrNorm},
}

// poll: POLLERR and POLLHUP are reported whether asked for or not, POLLNVAL for a
// descriptor that is not open; the timeout runs on the virtual clock.
func (a *adapter) poll(r *request, id int64) (reply, error) {
	masks := make([]waiter.EventMask, len(r.FDs))
	for i, p := range r.FDs {
		masks[i] = waiter.EventErr | waiter.EventHUp
		for _, name := range p.Events {
			found := false
			for _, e := range pollEvents {
				if e.name == name {
					masks[i] |= e.mask
					found = true
				}
			}
			if !found {
				return nil, badf("event %q is not one this adapter knows", name)
			}
		}
	}
	check := func(expired bool) reply {
		revents := make([][]string, len(r.FDs))
		ready := 0
		for i, p := range r.FDs {
			revents[i] = []string{}
			s := a.sockets[p.FD]
			if s == nil {
				revents[i] = append(revents[i], "POLLNVAL")
				ready++
				continue
			}
			got := s.ep.Readiness(masks[i]) & masks[i]
			for _, e := range pollEvents {
				if got&e.mask != 0 {
					revents[i] = append(revents[i], e.name)
				}
			}
			if got != 0 {
				ready++
			}
		}
		if ready == 0 && !expired {
			return nil
		}
		return reply{"ret": ready, "revents": revents}
	}
	timeout := int64(-1)
	if r.TimeoutUs != nil {
		timeout = *r.TimeoutUs
	}
	if res := check(timeout == 0); res != nil {
		return res, nil
	}
	var deadline *time.Time
	if timeout > 0 {
		d := a.clock.Now().Add(time.Duration(timeout) * time.Microsecond)
		deadline = &d
	}
	return a.block(id, deadline, func(now time.Time) reply {
		return check(deadline != nil && !now.Before(*deadline))
	})
}
