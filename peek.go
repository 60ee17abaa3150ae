package pacehttp

import (
	"io"
	"net/http"
	"sync"
)

// maxPeek bounds how much of a request body the pacer reads to find its
// model and estimate its cost.
const maxPeek = 1 << 20

// peekBuffers holds the buffers bodies are read into, so that reading one
// per request allocates nothing once the pool is warm.
var peekBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// A bodyPeek reads a request's body once, through GetBody so that the
// request itself is untouched, for everything the pacer reads in it. The
// bytes are valid until release, which every peek must be given.
type bodyPeek struct {
	req  *http.Request
	buf  *[]byte
	read bool // bytes has been called
	ok   bool
}

// bytes returns the first maxPeek bytes of the body, or false if it cannot
// be read again (no GetBody, or a read failed).
func (p *bodyPeek) bytes() ([]byte, bool) {
	if p.read {
		return p.bytesRead()
	}
	p.read = true
	req := p.req
	if req.GetBody == nil || req.ContentLength == 0 {
		return nil, false
	}
	rc, err := req.GetBody()
	if err != nil || rc == nil {
		return nil, false
	}
	defer rc.Close()
	p.buf = peekBuffers.Get().(*[]byte)
	b := (*p.buf)[:0]
	for len(b) < maxPeek {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // let append choose the growth
		}
		n, err := rc.Read(b[len(b):min(cap(b), maxPeek)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			*p.buf = b
			return nil, false
		}
	}
	*p.buf, p.ok = b, true
	return b, true
}

func (p *bodyPeek) bytesRead() ([]byte, bool) {
	if !p.ok {
		return nil, false
	}
	return *p.buf, true
}

// release hands the buffer back; the bytes must not be used after.
func (p *bodyPeek) release() {
	if p.buf != nil {
		peekBuffers.Put(p.buf)
		p.buf = nil
	}
}
