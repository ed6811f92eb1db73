package main

// setsockopt and getsockopt for the options the cases use, each as the sentry's
// setSockOpt*/getSockOpt* (pkg/sentry/socket/netstack/netstack.go) does it.

import (
	"encoding/json"
	"math"
	"sort"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/syserr"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// linger is SO_LINGER's value.
type linger struct {
	OnOff  int `json:"l_onoff"`
	Linger int `json:"l_linger"`
}

type sockopt struct {
	set func(s *sock, v int) tcpip.Error
	get func(s *sock) (int, tcpip.Error)
}

// boolean is an on/off option kept in the endpoint's SocketOptions.
func boolean(get func(*tcpip.SocketOptions) bool, set func(*tcpip.SocketOptions, bool)) sockopt {
	return sockopt{
		set: func(s *sock, v int) tcpip.Error { set(s.ep.SocketOptions(), v != 0); return nil },
		get: func(s *sock) (int, tcpip.Error) { return boolInt(get(s.ep.SocketOptions())), nil },
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// clampBufSize is the sentry's: clamp to the maximum, double (Linux doubles the value
// for its bookkeeping overhead), raise to the minimum.
func clampBufSize(v, min, max int64) int64 {
	if v > max {
		v = max
	}
	if v < math.MaxInt32/2 {
		v *= 2
		if v < min {
			v = min
		}
	} else {
		v = math.MaxInt32
	}
	return v
}

// bufSize is SO_RCVBUF or SO_SNDBUF: set through clampBufSize, read back as kept.
func bufSize(limits func(*tcpip.SocketOptions) (int64, int64), get func(*tcpip.SocketOptions) int64,
	set func(*tcpip.SocketOptions, int64, bool)) sockopt {
	return sockopt{
		set: func(s *sock, v int) tcpip.Error {
			min, max := limits(s.ep.SocketOptions())
			set(s.ep.SocketOptions(), clampBufSize(int64(uint32(v)), min, max), true)
			return nil
		},
		get: func(s *sock) (int, tcpip.Error) {
			return int(minInt64(get(s.ep.SocketOptions()), math.MaxInt32)), nil
		},
	}
}

// seconds is an option kept as a duration and given in whole seconds, with the
// sentry's bounds.
func seconds(lo, hi int, set func(tcpip.Endpoint, time.Duration) tcpip.Error, get func(tcpip.Endpoint) (time.Duration, tcpip.Error)) sockopt {
	return sockopt{
		set: func(s *sock, v int) tcpip.Error {
			if v < lo || v > hi {
				return &tcpip.ErrInvalidOptionValue{}
			}
			return set(s.ep, time.Duration(v)*time.Second)
		},
		get: func(s *sock) (int, tcpip.Error) {
			d, err := get(s.ep)
			return int(d / time.Second), err
		},
	}
}

var sockopts = map[string]sockopt{
	"SOL_SOCKET.SO_REUSEADDR": boolean((*tcpip.SocketOptions).GetReuseAddress, (*tcpip.SocketOptions).SetReuseAddress),
	"SOL_SOCKET.SO_REUSEPORT": boolean((*tcpip.SocketOptions).GetReusePort, (*tcpip.SocketOptions).SetReusePort),
	"SOL_SOCKET.SO_KEEPALIVE": boolean((*tcpip.SocketOptions).GetKeepAlive, (*tcpip.SocketOptions).SetKeepAlive),
	"SOL_SOCKET.SO_RCVBUF": bufSize((*tcpip.SocketOptions).ReceiveBufferLimits,
		(*tcpip.SocketOptions).GetReceiveBufferSize, (*tcpip.SocketOptions).SetReceiveBufferSize),
	"SOL_SOCKET.SO_SNDBUF": bufSize((*tcpip.SocketOptions).SendBufferLimits,
		(*tcpip.SocketOptions).GetSendBufferSize, (*tcpip.SocketOptions).SetSendBufferSize),
	// SO_ERROR returns and clears the pending error, as an errno number.
	"SOL_SOCKET.SO_ERROR": {
		get: func(s *sock) (int, tcpip.Error) {
			if err := s.ep.SocketOptions().GetLastError(); err != nil {
				return int(syserr.TranslateNetstackError(err).ToLinux()), nil
			}
			return 0, nil
		},
	},
	"IPPROTO_TCP.TCP_NODELAY": {
		set: func(s *sock, v int) tcpip.Error { s.ep.SocketOptions().SetDelayOption(v == 0); return nil },
		get: func(s *sock) (int, tcpip.Error) { return boolInt(!s.ep.SocketOptions().GetDelayOption()), nil },
	},
	"IPPROTO_TCP.TCP_CORK":     boolean((*tcpip.SocketOptions).GetCorkOption, (*tcpip.SocketOptions).SetCorkOption),
	"IPPROTO_TCP.TCP_QUICKACK": boolean((*tcpip.SocketOptions).GetQuickAck, (*tcpip.SocketOptions).SetQuickAck),
	"IPPROTO_TCP.TCP_MAXSEG": {
		set: func(s *sock, v int) tcpip.Error { return s.ep.SetSockOptInt(tcpip.MaxSegOption, int(uint32(v))) },
		get: func(s *sock) (int, tcpip.Error) { return s.ep.GetSockOptInt(tcpip.MaxSegOption) },
	},
	"IPPROTO_TCP.TCP_KEEPCNT": {
		set: func(s *sock, v int) tcpip.Error {
			if v < 1 || v > maxKeepCount {
				return &tcpip.ErrInvalidOptionValue{}
			}
			return s.ep.SetSockOptInt(tcpip.KeepaliveCountOption, v)
		},
		get: func(s *sock) (int, tcpip.Error) { return s.ep.GetSockOptInt(tcpip.KeepaliveCountOption) },
	},
	"IPPROTO_TCP.TCP_KEEPIDLE": seconds(1, maxKeepSeconds,
		func(ep tcpip.Endpoint, d time.Duration) tcpip.Error {
			o := tcpip.KeepaliveIdleOption(d)
			return ep.SetSockOpt(&o)
		},
		func(ep tcpip.Endpoint) (time.Duration, tcpip.Error) {
			var o tcpip.KeepaliveIdleOption
			err := ep.GetSockOpt(&o)
			return time.Duration(o), err
		}),
	"IPPROTO_TCP.TCP_KEEPINTVL": seconds(1, maxKeepSeconds,
		func(ep tcpip.Endpoint, d time.Duration) tcpip.Error {
			o := tcpip.KeepaliveIntervalOption(d)
			return ep.SetSockOpt(&o)
		},
		func(ep tcpip.Endpoint) (time.Duration, tcpip.Error) {
			var o tcpip.KeepaliveIntervalOption
			err := ep.GetSockOpt(&o)
			return time.Duration(o), err
		}),
	"IPPROTO_TCP.TCP_USER_TIMEOUT": {
		set: func(s *sock, v int) tcpip.Error {
			if int32(v) < 0 {
				return &tcpip.ErrInvalidOptionValue{}
			}
			o := tcpip.TCPUserTimeoutOption(time.Duration(v) * time.Millisecond)
			return s.ep.SetSockOpt(&o)
		},
		get: func(s *sock) (int, tcpip.Error) {
			var o tcpip.TCPUserTimeoutOption
			err := s.ep.GetSockOpt(&o)
			return int(time.Duration(o) / time.Millisecond), err
		},
	},
	"IPPROTO_IP.IP_TTL": {
		set: func(s *sock, v int) tcpip.Error {
			if v == -1 {
				v = 0 // the default TTL
			} else if v < 1 || v > 255 {
				return &tcpip.ErrInvalidOptionValue{}
			}
			return s.ep.SetSockOptInt(tcpip.IPv4TTLOption, v)
		},
		get: func(s *sock) (int, tcpip.Error) {
			v, err := s.ep.GetSockOptInt(tcpip.IPv4TTLOption)
			if v == 0 {
				v = defaultTTL
			}
			return v, err
		},
	},
	"IPPROTO_IP.IP_TOS": {
		set: func(s *sock, v int) tcpip.Error { return s.ep.SetSockOptInt(tcpip.IPv4TOSOption, v&0xff) },
		get: func(s *sock) (int, tcpip.Error) { return s.ep.GetSockOptInt(tcpip.IPv4TOSOption) },
	},
}

const lingerName = "SOL_SOCKET.SO_LINGER"

// Linux's bounds on the keepalive options (include/net/tcp.h), which the sentry applies.
const (
	maxKeepSeconds = 32767
	maxKeepCount   = 127
)

func minInt64(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}

func sockoptNames() []string {
	names := []string{lingerName}
	for n := range sockopts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (a *adapter) setsockopt(s *sock, r *request, _ int64) (reply, error) {
	key := r.Level + "." + r.Name
	if key == lingerName {
		var l linger
		if err := json.Unmarshal(r.Value, &l); err != nil {
			return nil, badf("SO_LINGER wants {\"l_onoff\": N, \"l_linger\": N}: %v", err)
		}
		s.ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: l.OnOff != 0, Timeout: time.Duration(l.Linger) * time.Second})
		return ok(0), nil
	}
	opt, known := sockopts[key]
	if !known || opt.set == nil {
		return nil, badf("%s is not an option this adapter sets", key)
	}
	var v int
	if err := json.Unmarshal(r.Value, &v); err != nil {
		return nil, badf("%s wants an integer value: %v", key, err)
	}
	return result(opt.set(s, v)), nil
}

func (a *adapter) getsockopt(s *sock, r *request, _ int64) (reply, error) {
	key := r.Level + "." + r.Name
	if key == lingerName {
		l := s.ep.SocketOptions().GetLinger()
		return reply{"ret": 0, "value": linger{OnOff: boolInt(l.Enabled), Linger: int(l.Timeout / time.Second)}}, nil
	}
	opt, known := sockopts[key]
	if !known {
		return nil, badf("%s is not an option this adapter reads", key)
	}
	if opt.get == nil {
		return errnoReply(unix.ENOPROTOOPT), nil
	}
	v, err := opt.get(s)
	if err != nil {
		return fail(err), nil
	}
	return reply{"ret": 0, "value": v}, nil
}
