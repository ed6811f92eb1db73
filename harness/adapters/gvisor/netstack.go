package main

// Building the stack for init, the sysctls it maps, and the processing barrier.

import (
	"math/rand"
	"net"
	"sort"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

const nicID = 1

// defaultTTL is the sentry's netstack.DefaultTTL, Linux's ip_default_ttl.
const defaultTTL = 64

// newStack builds the stack as runsc's sandbox network stack does
// (runsc/boot/loader.go newEmptySandboxNetworkStack): ipv4, ipv6 and tcp, SACK on,
// receive-buffer auto-tuning on, the sentry's default TTL. What differs: the clock is
// virtual, randomness comes from the init seed, there is no UDP, ICMP socket, raw socket
// or iptables, and IPv6 neither sends router solicitations nor runs duplicate address
// detection (either would put packets on the wire that no case expects).
func newStack(clock tcpip.Clock, seed int64) (*stack.Stack, error) {
	s := stack.New(stack.Options{
		NetworkProtocols: []stack.NetworkProtocolFactory{
			ipv4.NewProtocol,
			ipv6.NewProtocolWithOptions(ipv6.Options{}),
		},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
		Clock:              clock,
		RandSource:         rand.NewSource(seed),
		HandleLocal:        true,
	})
	sack := tcpip.TCPSACKEnabled(true)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); err != nil {
		return nil, badf("enabling SACK: %s", err)
	}
	ttl := tcpip.DefaultTTLOption(defaultTTL)
	for _, p := range []tcpip.NetworkProtocolNumber{ipv4.ProtocolNumber, ipv6.ProtocolNumber} {
		if err := s.SetNetworkProtocolOption(p, &ttl); err != nil {
			return nil, badf("setting the default TTL: %s", err)
		}
	}
	moderate := tcpip.TCPModerateReceiveBufferOption(true)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &moderate); err != nil {
		return nil, badf("enabling receive-buffer auto-tuning: %s", err)
	}
	return s, nil
}

// parseIP returns an address in gVisor's form (4 or 16 octets) for the IP version.
func parseIP(s, version string) (tcpip.Address, error) {
	ip := net.ParseIP(s)
	if ip == nil {
		return "", badf("%q is not an IP address", s)
	}
	if version == "ipv4" {
		if v4 := ip.To4(); v4 != nil {
			return tcpip.Address(v4), nil
		}
		return "", badf("%q is not an IPv4 address", s)
	}
	return tcpip.Address(ip.To16()), nil
}

// configure gives the NIC the local address and routes: the on-link prefix, and every
// other destination through the gateway. The link resolves no addresses, so a packet
// for any destination goes out on the packet descriptor.
func configure(s *stack.Stack, l *link, r *request) error {
	version := r.IPVersion
	if version == "" {
		version = "ipv4"
	}
	netProto, empty := header.IPv4ProtocolNumber, header.IPv4EmptySubnet
	switch version {
	case "ipv4":
	case "ipv6":
		netProto, empty = header.IPv6ProtocolNumber, header.IPv6EmptySubnet
	default:
		return badf("init: unknown ip_version %q", version)
	}
	local, err := parseIP(r.LocalIP, version)
	if err != nil {
		return err
	}
	if r.PrefixLen == nil || *r.PrefixLen < 0 || *r.PrefixLen > len(local)*8 {
		return badf("init: prefix_len missing or out of range for %s", version)
	}
	if err := s.CreateNIC(nicID, l); err != nil {
		return badf("init: creating the NIC: %s", err)
	}
	addr := tcpip.AddressWithPrefix{Address: local, PrefixLen: *r.PrefixLen}
	if err := s.AddProtocolAddress(nicID, tcpip.ProtocolAddress{Protocol: netProto, AddressWithPrefix: addr}, stack.AddressProperties{}); err != nil {
		return badf("init: adding %s: %s", r.LocalIP, err)
	}
	routes := []tcpip.Route{{Destination: addr.Subnet(), NIC: nicID}}
	def := tcpip.Route{Destination: empty, NIC: nicID}
	if r.GatewayIP != "" {
		if def.Gateway, err = parseIP(r.GatewayIP, version); err != nil {
			return err
		}
	}
	s.SetRouteTable(append(routes, def))
	return nil
}

type protoOpt = tcpip.SettableTransportProtocolOption

// sysctls maps each Linux sysctl this adapter applies to the gVisor option that means the
// same, built from the sysctl's value (the sentry's /proc/sys/net maps tcp_sack,
// tcp_recovery, tcp_rmem and tcp_wmem the same way, pkg/sentry/fsimpl/proc/tasks_sys.go).
var sysctls = map[string]func(v string) (protoOpt, error){
	"net.ipv4.tcp_syn_retries":     integer(func(n int64) protoOpt { o := tcpip.TCPSynRetriesOption(n); return &o }),
	"net.ipv4.tcp_retries2":        integer(func(n int64) protoOpt { o := tcpip.TCPMaxRetriesOption(n); return &o }),
	"net.ipv4.tcp_moderate_rcvbuf": flag(func(b bool) protoOpt { o := tcpip.TCPModerateReceiveBufferOption(b); return &o }),
	"net.ipv4.tcp_fin_timeout": integer(func(n int64) protoOpt {
		o := tcpip.TCPLingerTimeoutOption(time.Duration(n) * time.Second)
		return &o
	}),
	"net.ipv4.tcp_congestion_control": func(v string) (protoOpt, error) {
		o := tcpip.CongestionControlOption(v)
		return &o, nil
	},
	"net.ipv4.tcp_rmem": triple(func(n []int64) protoOpt {
		return &tcpip.TCPReceiveBufferSizeRangeOption{Min: int(n[0]), Default: int(n[1]), Max: int(n[2])}
	}),
	"net.ipv4.tcp_wmem": triple(func(n []int64) protoOpt {
		return &tcpip.TCPSendBufferSizeRangeOption{Min: int(n[0]), Default: int(n[1]), Max: int(n[2])}
	}),
}

// portRange is applied to the stack itself rather than as a TCP option.
const portRange = "net.ipv4.ip_local_port_range"

// Loss detection. Linux has a switch for SACK (tcp_sack), one for RACK (tcp_recovery: its
// bits 1 RACK, 2 static reordering window, 4 no dupthresh are gVisor's TCPRecovery bits, as
// the sentry's SetTCPRecovery assumes) and one for the tail loss probe (tcp_early_retrans:
// 3 and 4 turn TLP on, RFC 8985 7). gVisor has no switch for TLP alone: its probe timer runs
// only with RACK loss detection on and SACK permitted on the connection (shouldSchedulePTO in
// transport/tcp/rack.go). So with tcp_early_retrans below 3 and SACK on, the adapter turns
// RACK off too: Linux's behaviour exactly when tcp_recovery is 0 as well; with tcp_recovery
// 1 gVisor then detects loss by duplicate ACKs alone (RFC 6675), where Linux would still
// use RACK. With SACK off no TLP can happen, and RACK is left as tcp_recovery says.
const (
	sackName         = "net.ipv4.tcp_sack"
	recoveryName     = "net.ipv4.tcp_recovery"
	earlyRetransName = "net.ipv4.tcp_early_retrans"
)

// lossSettings holds the three sysctls as set; the gVisor options follow from all three.
type lossSettings struct {
	sack     bool
	recovery tcpip.TCPRecovery
	tlp      bool
}

// loss starts as the stack is built: SACK on (newStack), RACK (gVisor's default), TLP on.
// One adapter process serves one case, so one value serves the process.
var loss = lossSettings{sack: true, recovery: tcpip.TCPRACKLossDetection, tlp: true}

// set records one of the three sysctls and applies the options that follow.
func (l *lossSettings) set(s *stack.Stack, name, v string) error {
	switch name {
	case sackName:
		b, err := zeroOrOne(v)
		if err != nil {
			return badf("%s: %v", name, err)
		}
		l.sack = b
	case recoveryName:
		n, err := ints(v, 1)
		if err != nil {
			return badf("%s: %v", name, err)
		}
		l.recovery = tcpip.TCPRecovery(n[0])
	case earlyRetransName:
		n, err := ints(v, 1)
		if err != nil {
			return badf("%s: %v", name, err)
		}
		l.tlp = n[0] >= 3
	}
	sack := tcpip.TCPSACKEnabled(l.sack)
	recovery := l.recovery
	if l.sack && !l.tlp {
		recovery &^= tcpip.TCPRACKLossDetection
	}
	for _, opt := range []protoOpt{&sack, &recovery} {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
			return badf("%s = %q: gVisor refused it: %s", name, v, err)
		}
	}
	return nil
}

func sysctlNames() []string {
	names := []string{portRange, sackName, recoveryName, earlyRetransName}
	for n := range sysctls {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func zeroOrOne(v string) (bool, error) {
	switch v {
	case "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, badf("value %q: want 0 or 1", v)
}

func flag(make func(bool) protoOpt) func(string) (protoOpt, error) {
	return func(v string) (protoOpt, error) {
		b, err := zeroOrOne(v)
		if err != nil {
			return nil, err
		}
		return make(b), nil
	}
}

func integer(make func(int64) protoOpt) func(string) (protoOpt, error) {
	return func(v string) (protoOpt, error) {
		n, err := ints(v, 1)
		if err != nil {
			return nil, err
		}
		return make(n[0]), nil
	}
}

func triple(make func([]int64) protoOpt) func(string) (protoOpt, error) {
	return func(v string) (protoOpt, error) {
		n, err := ints(v, 3)
		if err != nil {
			return nil, err
		}
		return make(n), nil
	}
}

// applySysctl sets the gVisor option for one declared sysctl.
func applySysctl(s *stack.Stack, name, v string) error {
	if name == portRange {
		n, err := ints(v, 2)
		if err != nil {
			return err
		}
		if err := s.SetPortRange(uint16(n[0]), uint16(n[1])); err != nil {
			return badf("%s = %q: %s", name, v, err)
		}
		return nil
	}
	if name == sackName || name == recoveryName || name == earlyRetransName {
		return loss.set(s, name, v)
	}
	build, known := sysctls[name]
	if !known {
		return badf("sysctl %s is not one this adapter declared", name)
	}
	opt, err := build(v)
	if err != nil {
		return badf("%s: %v", name, err)
	}
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
		return badf("%s = %q: gVisor refused it: %s", name, v, err)
	}
	return nil
}
