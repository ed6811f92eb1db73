package main

import (
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/bufferv2"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// link is the NIC's link endpoint: gVisor's channel endpoint (no link header, no
// address resolution, no offloads, so the stack computes and checks every checksum),
// except that outbound packets go straight onto the packet descriptor, one datagram
// each, from whichever goroutine sends them. A packet is therefore on the descriptor
// as soon as the stack has handed it over; nothing waits in a queue.
type link struct {
	*channel.Endpoint
	fd       int
	sent     atomic.Uint64
	writeErr atomic.Value // error

	mu      sync.Mutex
	arrived *sync.Cond // signalled when a packet is queued or reading ends
	inbound [][]byte   // packets received and not yet injected
	readErr error
	buf     []byte
}

// newLink starts receiving from the packet descriptor.
func newLink(fd int, mtu uint32) *link {
	l := &link{Endpoint: channel.New(0, mtu, ""), fd: fd, buf: make([]byte, 65536)}
	l.arrived = sync.NewCond(&l.mu)
	go l.receive()
	return l
}

// WritePackets implements stack.LinkEndpoint.
func (l *link) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	n := 0
	for _, pkt := range pkts.AsSlice() {
		if _, err := unix.Writev(l.fd, pkt.AsSlices()); err != nil {
			l.writeErr.Store(fmt.Errorf("writing a packet to the packet descriptor: %w", err))
			return n, &tcpip.ErrClosedForSend{}
		}
		l.sent.Add(1)
		n++
	}
	return n, nil
}

// receive waits for packets on the packet descriptor for as long as it is open, and
// queues them for the adapter's goroutine to inject. Reading as they come, whatever the
// adapter is doing, keeps rfcdrill's writes from ever blocking on a full socket buffer.
func (l *link) receive() {
	fds := []unix.PollFd{{Fd: int32(l.fd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
			l.mu.Lock()
			l.readErr = fmt.Errorf("waiting on the packet descriptor: %w", err)
			l.mu.Unlock()
			l.arrived.Broadcast()
			return
		}
		l.mu.Lock()
		l.receiveQueued()
		stop := l.readErr != nil
		l.mu.Unlock()
		l.arrived.Broadcast()
		if stop {
			return
		}
	}
}

// receiveQueued queues every packet the descriptor holds now. Both goroutines call it,
// holding mu, so packets are queued in the order they were written.
func (l *link) receiveQueued() {
	for l.readErr == nil {
		n, _, err := unix.Recvfrom(l.fd, l.buf, unix.MSG_DONTWAIT)
		switch {
		case err == unix.EAGAIN:
			return
		case err == unix.EINTR:
		case err != nil:
			l.readErr = fmt.Errorf("reading the packet descriptor: %w", err)
		case n == 0:
			l.readErr = fmt.Errorf("the packet descriptor was closed")
		default:
			l.inbound = append(l.inbound, append([]byte(nil), l.buf[:n]...))
		}
	}
}

// readAvailable injects every packet written so far, waiting until at least `atLeast`
// have been injected. It returns how many it injected.
func (l *link) readAvailable(atLeast int64) (int64, error) {
	l.mu.Lock()
	l.receiveQueued()
	for int64(len(l.inbound)) < atLeast && l.readErr == nil {
		l.arrived.Wait()
	}
	packets, err := l.inbound, l.readErr
	l.inbound = nil
	l.mu.Unlock()
	for _, p := range packets {
		l.inject(p)
	}
	if int64(len(packets)) >= atLeast {
		err = nil // the descriptor's end matters only once a packet is missing
	}
	return int64(len(packets)), err
}

// inject hands one IP packet to the stack, synchronously up to TCP's dispatcher queue.
func (l *link) inject(b []byte) {
	var proto tcpip.NetworkProtocolNumber
	switch header.IPVersion(b) {
	case header.IPv4Version:
		proto = header.IPv4ProtocolNumber
	case header.IPv6Version:
		proto = header.IPv6ProtocolNumber
	default:
		return // not IP: a real link would drop it too
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: bufferv2.MakeWithData(b)})
	l.InjectInbound(proto, pkt)
	pkt.DecRef()
}
