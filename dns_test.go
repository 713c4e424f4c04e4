package msc

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeDNS is a DNS server on a loopback UDP socket, written with the
// standard library, that answers A, AAAA and SRV questions from tables the
// test sets: discovery is tested without a network. resolver returns a
// net.Resolver that asks it.
type fakeDNS struct {
	pc      net.PacketConn
	queries atomic.Int64 // questions answered
	fail    atomic.Bool  // answer SERVFAIL to everything

	// mu guards the tables.
	mu  sync.Mutex
	ips map[string][]net.IP  // rooted lower-case name → A and AAAA addresses
	srv map[string][]net.SRV // rooted lower-case name → SRV records
	wg  sync.WaitGroup
}

// DNS record types and classes used here.
const (
	dnsTypeA    = 1
	dnsTypeAAAA = 28
	dnsTypeSRV  = 33
	dnsClassIN  = 1
)

func newFakeDNS(t testing.TB) *fakeDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDNS{pc: pc, ips: make(map[string][]net.IP), srv: make(map[string][]net.SRV)}
	d.wg.Add(1)
	go d.serve()
	t.Cleanup(func() {
		pc.Close()
		d.wg.Wait()
	})
	return d
}

func rooted(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

// setIPs sets the A and AAAA records of name ("" addresses: none).
func (d *fakeDNS) setIPs(name string, addrs ...string) {
	var ips []net.IP
	for _, a := range addrs {
		ips = append(ips, net.ParseIP(a))
	}
	d.mu.Lock()
	d.ips[rooted(name)] = ips
	d.mu.Unlock()
}

// setSRV sets the SRV records of name.
func (d *fakeDNS) setSRV(name string, recs ...net.SRV) {
	d.mu.Lock()
	d.srv[rooted(name)] = recs
	d.mu.Unlock()
}

// resolver returns a resolver that asks d, whatever server it was told.
func (d *fakeDNS) resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "udp", d.pc.LocalAddr().String())
		},
	}
}

func (d *fakeDNS) serve() {
	defer d.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, from, err := d.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if out, ok := d.answer(buf[:n]); ok {
			d.pc.WriteTo(out, from)
		}
	}
}

// answer builds the response to one query: a header, the question echoed,
// and the answers, each named by a pointer to the question's name.
func (d *fakeDNS) answer(q []byte) ([]byte, bool) {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil, false
	}
	name, end, err := readName(q, 12)
	if err != nil || end+4 > len(q) {
		return nil, false
	}
	qtype := binary.BigEndian.Uint16(q[end:])
	question := q[12 : end+4]
	d.queries.Add(1)

	rcode := 0
	var answers [][]byte // rdata, all of type qtype
	d.mu.Lock()
	ips, hasIPs := d.ips[name]
	srvs, hasSRV := d.srv[name]
	d.mu.Unlock()
	switch {
	case d.fail.Load():
		rcode = 2 // SERVFAIL
	case !hasIPs && !hasSRV:
		rcode = 3 // NXDOMAIN
	case qtype == dnsTypeA:
		for _, ip := range ips {
			if v4 := ip.To4(); v4 != nil {
				answers = append(answers, v4)
			}
		}
	case qtype == dnsTypeAAAA:
		for _, ip := range ips {
			if ip.To4() == nil {
				answers = append(answers, ip.To16())
			}
		}
	case qtype == dnsTypeSRV:
		for _, s := range srvs {
			rd := binary.BigEndian.AppendUint16(nil, s.Priority)
			rd = binary.BigEndian.AppendUint16(rd, s.Weight)
			rd = binary.BigEndian.AppendUint16(rd, s.Port)
			answers = append(answers, appendName(rd, s.Target))
		}
	}
	out := make([]byte, 12, 512)
	copy(out, q[:2])                                          // id
	out[2] = 0x80 | 0x04 | q[2]&0x01                          // QR, AA, RD copied
	out[3] = 0x80 | byte(rcode)                               // RA, rcode
	binary.BigEndian.PutUint16(out[4:], 1)                    // questions
	binary.BigEndian.PutUint16(out[6:], uint16(len(answers))) // answers
	out = append(out, question...)
	for _, rd := range answers {
		out = append(out, 0xC0, 12) // the question's name
		out = binary.BigEndian.AppendUint16(out, qtype)
		out = binary.BigEndian.AppendUint16(out, dnsClassIN)
		out = binary.BigEndian.AppendUint32(out, 0) // TTL
		out = binary.BigEndian.AppendUint16(out, uint16(len(rd)))
		out = append(out, rd...)
	}
	return out, true
}

// readName reads an uncompressed name at off; it returns it rooted and in
// lower case, and the offset after it.
func readName(b []byte, off int) (string, int, error) {
	var labels []string
	for {
		if off >= len(b) {
			return "", 0, errors.New("short name")
		}
		n := int(b[off])
		off++
		if n == 0 {
			break
		}
		if n > 63 || off+n > len(b) {
			return "", 0, errors.New("bad label")
		}
		labels = append(labels, string(b[off:off+n]))
		off += n
	}
	return rooted(strings.Join(labels, ".")), off, nil
}

func appendName(b []byte, name string) []byte {
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0)
}

func TestFakeDNS(t *testing.T) {
	d := newFakeDNS(t)
	d.setIPs("a.msc.test", "127.0.0.7", "::1")
	d.setSRV("_msc._tcp.msc.test", net.SRV{Target: "a.msc.test.", Port: 9}, net.SRV{Target: "b.msc.test.", Port: 10})
	r := d.resolver()
	ctx := context.Background()
	ips, err := r.LookupIPAddr(ctx, "a.msc.test.")
	if err != nil || len(ips) != 2 {
		t.Fatalf("LookupIPAddr: %v %v", ips, err)
	}
	_, srvs, err := r.LookupSRV(ctx, "", "", "_msc._tcp.msc.test.")
	if err != nil || len(srvs) != 2 {
		t.Fatalf("LookupSRV: %v %v", srvs, err)
	}
	var dnsErr *net.DNSError
	if _, err := r.LookupIPAddr(ctx, "nothing.msc.test."); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Fatalf("unknown name: %v", err)
	}
	d.fail.Store(true)
	if _, err := r.LookupIPAddr(ctx, "a.msc.test."); err == nil {
		t.Fatal("SERVFAIL: no error")
	}
}
