package msc

import "sync"

// dispatcher runs user callbacks (OnChange, OnError, queued DoIfMaster
// callbacks) one at a time, in order, on one goroutine, so that a slow
// callback never blocks the elector or a connection.
//
// Its goroutine is started by Start and waited for by Stop. When the node
// stops it runs what was queued before (so that a callback learns the node
// is no longer master) and then drops everything.
type dispatcher struct {
	mu     sync.Mutex
	q      []func()
	closed bool
	wake   chan struct{} // cap 1
	done   chan struct{} // closed by stop
}

func (d *dispatcher) init() {
	d.wake = make(chan struct{}, 1)
	d.done = make(chan struct{})
}

func (d *dispatcher) push(fn func()) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.q = append(d.q, fn)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// run is the dispatcher goroutine; it returns after stop is called and
// the queue is empty.
func (d *dispatcher) run(wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		select {
		case <-d.wake:
		case <-d.done:
			d.mu.Lock()
			d.closed = true
			q := d.q
			d.q = nil
			d.mu.Unlock()
			for _, fn := range q {
				fn()
			}
			return
		}
		d.mu.Lock()
		q := d.q
		d.q = nil
		d.mu.Unlock()
		for _, fn := range q {
			fn()
		}
	}
}

func (d *dispatcher) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.done:
	default:
		close(d.done)
	}
}
