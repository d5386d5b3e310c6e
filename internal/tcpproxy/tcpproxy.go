// Package tcpproxy is a loopback TCP proxy for fault tests: Freeze holds
// every byte in both directions, as a network partition or a hung host
// does (connections stay open, nothing comes back); Cut closes every
// connection, as a restart or a failover of the server behind it does.
package tcpproxy

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy forwards connections from Addr to its target until the test ends.
type Proxy struct {
	ln     net.Listener
	target string
	frozen atomic.Bool

	mu    sync.Mutex
	conns []net.Conn
}

// Start listens on a free loopback port and forwards each connection to
// target; everything stops when t ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.Thaw()
		p.Cut()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				p.wait()
				up, err := net.Dial("tcp", target)
				if err != nil {
					c.Close()
					return
				}
				p.mu.Lock()
				p.conns = append(p.conns, c, up)
				p.mu.Unlock()
				wg.Go(func() { p.pipe(up, c) })
				p.pipe(c, up)
			})
		}
	})
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Freeze holds every byte from now on, and every new connection, until
// Thaw.
func (p *Proxy) Freeze() { p.frozen.Store(true) }

// Thaw delivers what Freeze held and forwards again.
func (p *Proxy) Thaw() { p.frozen.Store(false) }

// Cut closes every connection open through the proxy; new ones go
// through.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *Proxy) wait() {
	for p.frozen.Load() {
		time.Sleep(5 * time.Millisecond)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.wait()
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
