package main

import (
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/faketime"
)

// epoch is the virtual clock's zero: faketime.ManualClock starts at the Unix epoch.
var epoch = time.Unix(0, 0)

// vclock is faketime.ManualClock plus a record of every armed timer's due time, which
// ManualClock keeps private: the protocol's sync and advance replies carry the next one
// (next_us), and advance steps the clock to each due time in turn.
type vclock struct {
	*faketime.ManualClock
	mu  sync.Mutex
	due map[*vtimer]time.Time
}

var _ tcpip.Clock = (*vclock)(nil)

func newVClock() *vclock {
	return &vclock{ManualClock: faketime.NewManualClock(), due: map[*vtimer]time.Time{}}
}

// vtimer wraps a ManualClock timer so that the clock knows when it is due.
type vtimer struct {
	c     *vclock
	inner tcpip.Timer
}

func (c *vclock) arm(t *vtimer, d time.Duration) {
	c.mu.Lock()
	c.due[t] = c.Now().Add(d)
	c.mu.Unlock()
}

func (c *vclock) disarm(t *vtimer) {
	c.mu.Lock()
	delete(c.due, t)
	c.mu.Unlock()
}

// AfterFunc implements tcpip.Clock.
func (c *vclock) AfterFunc(d time.Duration, f func()) tcpip.Timer {
	t := &vtimer{c: c}
	c.arm(t, d)
	t.inner = c.ManualClock.AfterFunc(d, func() {
		c.disarm(t)
		f()
	})
	return t
}

// Stop implements tcpip.Timer.
func (t *vtimer) Stop() bool {
	t.c.disarm(t)
	return t.inner.Stop()
}

// Reset implements tcpip.Timer.
func (t *vtimer) Reset(d time.Duration) {
	t.c.arm(t, d)
	t.inner.Reset(d)
}

// next is the earliest due time of an armed timer; ok is false when none is armed.
// TCP's retransmission timer leaves its clock timer armed when it is disabled (it is
// "orphaned", transport/tcp/timer.go), so a due time here may fire without effect.
func (c *vclock) next() (t time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range c.due {
		if !ok || d.Before(t) {
			t, ok = d, true
		}
	}
	return t, ok
}

// micros is a virtual time as the protocol counts it: microseconds since init.
func micros(t time.Time) int64 { return t.Sub(epoch).Microseconds() }

// ceilMicros rounds a due time up to the microsecond, so that advancing to it fires the
// timer (netstack's RTO, from measured round trips, need not be whole microseconds).
func ceilMicros(t time.Time) int64 {
	d := t.Sub(epoch)
	us := d.Microseconds()
	if d%time.Microsecond != 0 {
		us++
	}
	return us
}

func fromMicros(us int64) time.Time { return epoch.Add(time.Duration(us) * time.Microsecond) }
