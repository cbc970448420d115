package testenv

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestEjabberd starts ejabberd, registers an account, checks that every listener (and the Erlang
// distribution) is on loopback only and that no epmd was started, restarts it and stops it.
func TestEjabberd(t *testing.T) {
	e := StartEjabberd(t, EjabberdOptions{ComponentSecret: "s3cret"})
	if got := e.CreateAccount(t, "alice", "pw"); got != "alice@localhost" {
		t.Errorf("CreateAccount = %q", got)
	}
	out, err := e.Ctl("registered_users", "localhost")
	if err != nil || !strings.Contains(out, "alice") {
		t.Errorf("registered_users: %q, %v", out, err)
	}
	for _, a := range []string{e.Addr(), e.DirectTLSAddr(), e.ComponentAddr()} {
		c, err := net.Dial("tcp", a)
		if err != nil {
			t.Errorf("dial %s: %v", a, err)
			continue
		}
		c.Close()
	}
	// Every socket of the server's processes listens on 127.0.0.1.
	ss, err := exec.Command("ss", "-Hltnp").Output()
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	pgid := e.proc.cmd.Process.Pid
	n := 0
	for _, line := range strings.Split(string(ss), "\n") {
		if !inGroup(line, pgid) {
			continue
		}
		n++
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[3], "127.0.0.1:") {
			t.Errorf("ejabberd listens beyond loopback: %s", line)
		}
	}
	// c2s, direct TLS, HTTP, component and Erlang distribution.
	if n < 5 {
		t.Errorf("found %d listening sockets of the server in ss output:\n%s", n, ss)
	}
	if strings.Contains(string(ss), ":4369 ") && !strings.Contains(string(ss), "127.0.0.1:4369 ") {
		t.Errorf("epmd listens beyond loopback:\n%s", ss)
	}
	e.Restart(t)
	if out, err := e.Ctl("registered_users", "localhost"); err != nil || !strings.Contains(out, "alice") {
		t.Errorf("after restart: %q, %v", out, err)
	}
	e.Stop()
	if c, err := net.Dial("tcp", e.Addr()); err == nil {
		c.Close()
		t.Error("ejabberd still listening after Stop")
	}
}

// inGroup reports whether a line of ss -p names a process of process group pgid.
func inGroup(line string, pgid int) bool {
	for _, part := range strings.Split(line, "pid=")[1:] {
		end := strings.IndexAny(part, ",)")
		if end < 0 {
			continue
		}
		stat, err := os.ReadFile("/proc/" + part[:end] + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp …; comm may hold spaces, so split after the last ')'.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}
