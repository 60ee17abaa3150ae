package pacetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
)

// errAborted is what a client sees when the handler dropped the connection
// (panicked with http.ErrAbortHandler); a real transport reports an
// unexpected EOF there too.
var errAborted = fmt.Errorf("pacetest: server closed the connection: %w", io.ErrUnexpectedEOF)

// memTransport calls a handler directly, with no sockets, so that everything
// a request waits on is a channel or a timer in the caller's synctest bubble.
// It keeps the parts of the RoundTripper contract a client can observe: the
// request body is read and closed, the caller's request is not modified, the
// response streams what the handler flushes, and the request's context
// cancels both the wait for headers and the reading of the body.
type memTransport struct {
	handler http.Handler
}

func (t *memTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("pacetest: reading request body: %w", err)
		}
		body = b
	}
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	hctx, cancel := context.WithCancel(ctx)
	sreq, err := serverRequest(hctx, req, body)
	if err != nil {
		cancel()
		return nil, err
	}

	pr, pw := io.Pipe()
	rw := &pipeWriter{header: make(http.Header), pw: pw, ready: make(chan struct{})}
	aborted := make(chan error, 1)
	go func() {
		defer cancel()
		defer func() {
			if p := recover(); p != nil {
				// http.ErrAbortHandler is how a handler drops a connection;
				// a real server also survives any other panic by closing it.
				// Any other panic is a bug in the handler, and its value
				// goes into the error so that the test shows it.
				err := errAborted
				if p != http.ErrAbortHandler {
					err = fmt.Errorf("pacetest: handler panicked: %v: %w", p, io.ErrUnexpectedEOF)
				}
				if rw.committed {
					pw.CloseWithError(err)
				} else {
					aborted <- err
				}
				return
			}
			rw.commit(nil)
			// A handler that gave up because the client's context ended
			// must not look like a complete body.
			pw.CloseWithError(ctx.Err())
		}()
		t.handler.ServeHTTP(rw, sreq)
	}()

	select {
	case <-rw.ready:
	case err := <-aborted:
		return nil, err
	case <-ctx.Done():
		pw.CloseWithError(ctx.Err())
		return nil, ctx.Err()
	}

	resp := &http.Response{
		Status:        strconv.Itoa(rw.status) + " " + http.StatusText(rw.status),
		StatusCode:    rw.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rw.sent,
		ContentLength: -1,
		Request:       req,
	}
	if n, err := strconv.ParseInt(rw.sent.Get("Content-Length"), 10, 64); err == nil {
		resp.ContentLength = n
	}
	// Once the caller has the response, its context still governs the body:
	// cancelling it fails the next Read, as with net/http.
	stop := context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) })
	resp.Body = &pipeBody{pr: pr, stop: stop, cancel: cancel}
	return resp, nil
}

// serverRequest builds what a handler behind a real server would see.
func serverRequest(ctx context.Context, req *http.Request, body []byte) (*http.Request, error) {
	sreq := req.Clone(ctx)
	sreq.RequestURI = req.URL.RequestURI()
	u, err := url.ParseRequestURI(sreq.RequestURI)
	if err != nil {
		return nil, fmt.Errorf("pacetest: %w", err)
	}
	sreq.URL = u
	if sreq.Host == "" {
		sreq.Host = req.URL.Host
	}
	sreq.Proto, sreq.ProtoMajor, sreq.ProtoMinor = "HTTP/1.1", 1, 1
	sreq.RemoteAddr = "192.0.2.1:1234" // TEST-NET-1, as httptest.NewRequest uses
	sreq.Body = io.NopCloser(bytes.NewReader(body))
	sreq.ContentLength = int64(len(body))
	sreq.GetBody = nil
	sreq.Close = false
	return sreq, nil
}

// pipeWriter is the handler's side of the in-memory exchange. Only the
// handler goroutine calls its methods; ready hands the status and header
// snapshot to RoundTrip. As in net/http, the header is fixed by WriteHeader
// but sent only on the first Write or Flush, or when the handler returns,
// so a Content-Type can still be sniffed from the first bytes written.
type pipeWriter struct {
	header    http.Header
	pw        *io.PipeWriter
	ready     chan struct{}
	committed bool
	status    int         // 0 until WriteHeader
	sent      http.Header // snapshot taken by WriteHeader
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) WriteHeader(code int) {
	if w.status != 0 || (code >= 100 && code < 200) {
		return // informational answers are not delivered
	}
	w.status = code
	w.sent = w.header.Clone()
}

// commit sends the header, sniffing a Content-Type from p when none was set.
func (w *pipeWriter) commit(p []byte) {
	if w.committed {
		return
	}
	w.WriteHeader(http.StatusOK)
	if len(p) > 0 && w.sent.Get("Content-Type") == "" {
		w.sent.Set("Content-Type", http.DetectContentType(p))
	}
	w.committed = true
	close(w.ready)
}

func (w *pipeWriter) Write(p []byte) (int, error) {
	w.commit(p)
	// The pipe has no buffer: Write returns when the client has read p, so
	// a flushed chunk is never held back.
	return w.pw.Write(p)
}

// Flush sends the header; written data is already delivered.
func (w *pipeWriter) Flush() { w.commit(nil) }

// pipeBody is the client's side of the response body.
type pipeBody struct {
	pr     *io.PipeReader
	stop   func() bool
	cancel context.CancelFunc
	once   sync.Once
}

func (b *pipeBody) Read(p []byte) (int, error) { return b.pr.Read(p) }

// Close stops the handler, as a client hanging up does to a real server.
func (b *pipeBody) Close() error {
	b.once.Do(func() {
		b.stop()
		b.pr.CloseWithError(errors.New("pacetest: read on closed response body"))
		b.cancel()
	})
	return nil
}
