package msc

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
)

// Mutual TLS (Options.TLS). A connection first runs a TLS 1.3 handshake,
// each end verifying the other's certificate; then the wire runs inside it
// unchanged, hellos included, with algorithm "no": TLS provides
// confidentiality and integrity. The hellos also confirm, to the dialer,
// that the listener accepted its certificate: in TLS 1.3 the dialer's
// handshake ends before the listener has checked it.

// newTLSConfig checks Options.TLS and returns the node's copy of it:
// TLS 1.3 only, certificates required and verified both ways.
func newTLSConfig(user *tls.Config) (*tls.Config, error) {
	c := user.Clone()
	switch {
	case c.MaxVersion != 0 && c.MaxVersion < tls.VersionTLS13:
		return nil, fmt.Errorf("%w: TLS.MaxVersion below TLS 1.3", ErrInvalidOption)
	case c.InsecureSkipVerify:
		return nil, fmt.Errorf("%w: TLS.InsecureSkipVerify: peers' certificates must be verified", ErrInvalidOption)
	case c.ClientAuth != tls.NoClientCert && c.ClientAuth != tls.RequireAndVerifyClientCert:
		return nil, fmt.Errorf("%w: TLS.ClientAuth %v: client certificates are required and verified", ErrInvalidOption, c.ClientAuth)
	case len(c.Certificates) == 0 && c.GetCertificate == nil:
		return nil, fmt.Errorf("%w: TLS needs Certificates or GetCertificate", ErrInvalidOption)
	case c.RootCAs == nil && c.ClientCAs == nil:
		return nil, fmt.Errorf("%w: TLS needs RootCAs or ClientCAs, the CA of the cluster's certificates", ErrInvalidOption)
	}
	c.MinVersion = tls.VersionTLS13
	c.ClientAuth = tls.RequireAndVerifyClientCert
	if c.RootCAs == nil {
		c.RootCAs = c.ClientCAs
	}
	if c.ClientCAs == nil {
		c.ClientCAs = c.RootCAs
	}
	// Every connection verifies the peer's certificate: no resumption.
	c.SessionTicketsDisabled = true
	c.ClientSessionCache = nil
	// A node sends its certificate when it dials too, whatever CAs the
	// listener names: a certificate from another CA is then refused by
	// the listener, with a reason, rather than not sent at all.
	if c.GetClientCertificate == nil {
		if get := c.GetCertificate; get != nil {
			c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return get(&tls.ClientHelloInfo{})
			}
		} else {
			cert := &c.Certificates[0]
			c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return cert, nil
			}
		}
	}
	return c, nil
}

// dialTLSConfig returns the TLS config to dial a server at host with:
// the node's, verifying the server's certificate for host unless
// ServerName is set.
func dialTLSConfig(node *tls.Config, host string) *tls.Config {
	if node.ServerName != "" {
		return node
	}
	c := node.Clone()
	c.ServerName = host
	return c
}

// handshakeTLS runs the TLS handshake on c's socket, within the deadline
// handshake set, and makes the TLS connection c's.
func (c *conn) handshakeTLS() error {
	var tc *tls.Conn
	if c.server != "" {
		tc = tls.Client(c.out, c.tlsConf)
	} else {
		tc = tls.Server(c.out, c.m.cfg.tls)
	}
	if err := tc.Handshake(); err != nil {
		return tlsError(err)
	}
	c.nc = tc
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
		c.certSubject, c.certAt = certs[0].Subject.String(), mono()
	}
	return nil
}

// tlsError names the causes of a failed TLS handshake that a user can act
// on: a certificate refused here or by the peer (ErrCertificate), a peer
// that does not speak TLS (ErrAlgorithmMismatch). Network errors are
// returned as they are.
func tlsError(err error) error {
	var verify *tls.CertificateVerificationError
	var header tls.RecordHeaderError
	var op *net.OpError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &verify):
		subject := ""
		if len(verify.UnverifiedCertificates) > 0 {
			subject = verify.UnverifiedCertificates[0].Subject.String()
		}
		return fmt.Errorf("%w: the peer's certificate %q: %w", ErrCertificate, subject, verify)
	case errors.As(err, &header):
		return fmt.Errorf("%w: the peer does not speak TLS", ErrAlgorithmMismatch)
	case errors.As(err, &op) && op.Op == "remote error":
		// A TLS alert from the peer: with both ends on TLS 1.3 and
		// certificates required, its refusal of this node's certificate.
		return fmt.Errorf("%w by the peer: %w", ErrCertificate, op)
	}
	return err
}

// looksLikeTLS reports whether the first bytes of a frame are those of a
// TLS record (content types 20 to 23, major version 3): a TLS peer on a
// passphrase connection.
func looksLikeTLS(b []byte) bool { return len(b) >= 2 && b[0] >= 20 && b[0] <= 23 && b[1] == 3 }

// peerRef names c's peer for the certificate reports: the server id, or
// the remote host of an inbound connection.
func peerRef(c *conn) string {
	if c.server != "" {
		return "server " + c.server
	}
	host, _, err := net.SplitHostPort(c.raw.RemoteAddr().String())
	if err != nil {
		host = c.raw.RemoteAddr().String()
	}
	return "host " + host
}

// firstRefusal reports whether a certificate refusal on c is the first
// since the last handshake with that peer succeeded: only that one is
// reported, not one per redial.
func (m *Msc) firstRefusal(c *conn) bool {
	ref := peerRef(c)
	m.certMu.Lock()
	defer m.certMu.Unlock()
	if _, ok := m.certRefused[ref]; ok {
		return false
	}
	if m.certRefused == nil || len(m.certRefused) >= MaxInbound {
		m.certRefused = make(map[string]struct{})
	}
	m.certRefused[ref] = struct{}{}
	return true
}

// certAccepted records that a TLS handshake with c's peer succeeded.
func (m *Msc) certAccepted(c *conn) {
	ref := peerRef(c)
	m.certMu.Lock()
	delete(m.certRefused, ref)
	m.certMu.Unlock()
}
