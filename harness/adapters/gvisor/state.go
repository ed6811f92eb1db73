package main

// The state op (PROTOCOL.md section 5): connection variables in RFC 9293's names.

import (
	"math"
	"unsafe"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// completeState is the tcp endpoint's completeStateLocked, the copy of its sender and
// receiver variables that gVisor's TCP probes receive (transport/tcp/endpoint.go). It is
// not exported, and a probe sees it only when a segment arrives, so the adapter calls it
// directly, holding the endpoint's lock as the probe's caller does.
//
//go:linkname completeState gvisor.dev/gvisor/pkg/tcpip/transport/tcp.(*endpoint).completeStateLocked
func completeState(ep unsafe.Pointer, s *stack.TCPEndpointState)

// endpointPointer is the *tcp.endpoint inside a tcpip.Endpoint interface value.
func endpointPointer(ep tcpip.Endpoint) unsafe.Pointer {
	return (*[2]unsafe.Pointer)(unsafe.Pointer(&ep))[1]
}

// userLocker is the tcp endpoint's exported lock: held as a user (a syscall) holds it,
// so segments that arrive meanwhile wait and are processed on UnlockUser.
type userLocker interface {
	LockUser()
	UnlockUser()
}

var stateNames = []string{"state", "SND.UNA", "SND.NXT", "SND.WND", "RCV.NXT", "RCV.WND", "cwnd", "ssthresh", "RTO", "SMSS"}

// rfcStates names gVisor's endpoint states as RFC 9293 does. gVisor's states before a
// connection exists (initial, bound, and the connect in progress before its SYN) and its
// error state are CLOSED.
var rfcStates = map[tcp.EndpointState]string{
	tcp.StateEstablished: "ESTABLISHED",
	tcp.StateSynSent:     "SYN-SENT",
	tcp.StateSynRecv:     "SYN-RECEIVED",
	tcp.StateFinWait1:    "FIN-WAIT-1",
	tcp.StateFinWait2:    "FIN-WAIT-2",
	tcp.StateTimeWait:    "TIME-WAIT",
	tcp.StateClose:       "CLOSED",
	tcp.StateCloseWait:   "CLOSE-WAIT",
	tcp.StateLastAck:     "LAST-ACK",
	tcp.StateListen:      "LISTEN",
	tcp.StateClosing:     "CLOSING",
	tcp.StateInitial:     "CLOSED",
	tcp.StateBound:       "CLOSED",
	tcp.StateConnecting:  "SYN-SENT",
	tcp.StateError:       "CLOSED",
}

// synchronized are the states in which the endpoint has a sender and a receiver
// (tcp.EndpointState.connected, which is not exported).
var synchronized = map[tcp.EndpointState]bool{
	tcp.StateEstablished: true, tcp.StateFinWait1: true, tcp.StateFinWait2: true,
	tcp.StateTimeWait: true, tcp.StateCloseWait: true, tcp.StateLastAck: true, tcp.StateClosing: true,
}

func (a *adapter) state(r *request) (reply, error) {
	s, bad := a.sock(r)
	if bad != nil {
		return nil, badf("fd is not an open descriptor")
	}
	st := tcp.EndpointState(s.ep.State())
	out := reply{"state": rfcStates[st]}
	// Only a synchronized connection has a sender and a receiver to copy.
	if !synchronized[st] {
		return reply{"state": out}, nil
	}
	var snap stack.TCPEndpointState
	lock := s.ep.(userLocker)
	lock.LockUser()
	completeState(endpointPointer(s.ep), &snap)
	lock.UnlockUser()
	snd, rcv := snap.Sender, snap.Receiver
	smss := snd.MaxPayloadSize
	out["SND.UNA"] = uint32(snd.SndUna)
	out["SND.NXT"] = uint32(snd.SndNxt)
	out["SND.WND"] = int64(snd.SndWnd)
	out["RCV.NXT"] = uint32(rcv.RcvNxt)
	out["RCV.WND"] = int64(rcv.RcvNxt.Size(rcv.RcvAcc))
	out["cwnd"] = octets(snd.SndCwnd, smss)
	out["ssthresh"] = octets(snd.Ssthresh, smss)
	out["RTO"] = snd.RTO.Microseconds()
	out["SMSS"] = smss
	return reply{"state": out}, nil
}

// octets converts a count of segments, capped at 2^31-1 octets: netstack's initial
// ssthresh is MaxInt segments ("infinite"), Linux's TCP_INFINITE_SSTHRESH is 2^31-1.
func octets(segments, smss int) int64 {
	const infinite = math.MaxInt32
	if smss > 0 && segments > infinite/smss {
		return infinite
	}
	return int64(segments) * int64(smss)
}
