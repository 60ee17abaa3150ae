package redislimit

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server started by a test on a loopback port, which
// the test may kill, restart on the same port, stop and continue.
type redisServer struct {
	t       testing.TB
	bin     string
	port    int
	addr    string
	cluster bool

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// startRedis starts a throwaway redis-server, without persistence, on a
// free loopback port, and kills it when the test ends. Without redis-server
// the test is skipped, or fails when CI is set.
func startRedis(t testing.TB) *redisServer { return launchRedis(t, false) }

// startCluster starts a one-node Redis Cluster that serves every slot: it
// refuses, as any cluster does, a script whose keys lie in different slots.
func startCluster(t testing.TB) *redisServer {
	s := launchRedis(t, true)
	c := redis.NewClient(&redis.Options{Addr: s.addr})
	defer c.Close()
	ctx := context.Background()
	if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		info, _ := c.ClusterInfo(ctx).Result()
		if strings.Contains(info, "cluster_state:ok") {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster did not come up:\n%s", info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func redisBinary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redis-server is not installed: SKIPPING the Redis tests (apt-get install -y redis-server)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip("!!! " + msg)
	}
	return bin
}

func launchRedis(t testing.TB, cluster bool) *redisServer {
	t.Helper()
	s := &redisServer{t: t, bin: redisBinary(t), cluster: cluster}
	for range 5 {
		s.port = freePort(t)
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		if s.launch() {
			t.Cleanup(s.kill)
			return s
		}
	}
	t.Fatal("redis-server did not start")
	return nil
}

// launch starts redis-server on s.port and reports whether it answers.
func (s *redisServer) launch() bool {
	args := []string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--enable-debug-command", "yes"}
	if s.cluster {
		args = append(args, "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(s.t.TempDir(), "nodes.conf"))
	}
	cmd := exec.Command(s.bin, args...)
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	if s.ready(exited) {
		return true
	}
	s.kill() // the port was taken after all
	return false
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (s *redisServer) ready(exited <-chan struct{}) bool {
	c := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1})
	defer c.Close()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		select {
		case <-exited:
			return false
		default:
		}
		if c.Ping(context.Background()).Err() == nil {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// kill kills the server, continuing it first if stopped, and waits for it
// to exit.
func (s *redisServer) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// restart starts the server again on the same port, with nothing in it.
func (s *redisServer) restart() {
	for deadline := time.Now().Add(5 * time.Second); ; {
		if s.launch() {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatal("redis-server did not restart on its port")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop freezes the server (SIGSTOP): connections stay open, nothing is
// answered, until cont.
func (s *redisServer) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmd.Process.Signal(syscall.SIGSTOP)
}

func (s *redisServer) cont() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmd.Process.Signal(syscall.SIGCONT)
}

// client returns a client that honours context deadlines, closed at the
// test's end.
func (s *redisServer) client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.addr, ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

func (s *redisServer) String() string { return fmt.Sprintf("redis-server at %s", s.addr) }

// silentServer returns the address of a server that accepts connections
// and never answers, closed at the test's end.
func silentServer(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// refusedAddr returns a loopback address where nothing listens.
func refusedAddr(t testing.TB) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
}
