package main

import (
	"fmt"
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
}

func newLink(fd int, mtu uint32) *link {
	return &link{Endpoint: channel.New(0, mtu, ""), fd: fd}
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

// readAvailable injects every packet waiting on the packet descriptor, blocking until
// at least `atLeast` have been injected. It returns how many it injected.
func (l *link) readAvailable(atLeast int64) (int64, error) {
	var got int64
	buf := make([]byte, 65536)
	for {
		flags := unix.MSG_DONTWAIT
		if got < atLeast {
			flags = 0
		}
		n, _, err := unix.Recvfrom(l.fd, buf, flags)
		if err == unix.EAGAIN {
			return got, nil
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return got, fmt.Errorf("reading the packet descriptor: %w", err)
		}
		if n == 0 {
			return got, fmt.Errorf("the packet descriptor was closed")
		}
		l.inject(buf[:n])
		got++
	}
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
	data := make([]byte, len(b))
	copy(data, b)
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: bufferv2.MakeWithData(data)})
	l.InjectInbound(proto, pkt)
	pkt.DecRef()
}
