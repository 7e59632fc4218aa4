package awsfake

import (
	"net"
	"sync"
)

// Silent is an endpoint that accepts every connection on 127.0.0.1 and
// never answers: a black-holed AWS endpoint, for tests of the time
// limits.
type Silent struct {
	l    net.Listener
	done chan struct{}

	mu   sync.Mutex
	held []net.Conn
}

// NewSilent starts a Silent endpoint; Close stops it.
func NewSilent() (*Silent, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Silent{l: l, done: make(chan struct{})}
	go s.accept()
	return s, nil
}

func (s *Silent) accept() {
	defer close(s.done)
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.held = append(s.held, c) // open, never read nor written
		s.mu.Unlock()
	}
}

// URL is the endpoint's http URL.
func (s *Silent) URL() string { return "http://" + s.l.Addr().String() }

// Close stops accepting and closes every connection held.
func (s *Silent) Close() {
	_ = s.l.Close()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.held {
		_ = c.Close()
	}
}
