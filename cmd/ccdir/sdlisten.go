package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// systemdPrefix names a listening socket passed by systemd (socket
// activation, sd_listen_fds(3)): serve.smtp or serve.lmtp
// "systemd:NAME" takes the socket of the .socket unit's
// FileDescriptorName=NAME.
const systemdPrefix = "systemd:"

// sdListenFDsStart is the first file descriptor systemd passes.
const sdListenFDsStart = 3

var sdOnce struct {
	sync.Once
	listeners map[string]net.Listener
	err       error
}

// systemdListener returns the listening socket systemd passed under
// name: LISTEN_PID is this process, LISTEN_FDS counts the descriptors
// from 3 on, LISTEN_FDNAMES names them (colon-separated). The variables
// are read once and unset, so that no child takes them for its own.
func systemdListener(name string) (net.Listener, error) {
	sdOnce.Do(func() { sdOnce.listeners, sdOnce.err = systemdListeners(sdListenFDsStart) })
	if sdOnce.err != nil {
		return nil, sdOnce.err
	}
	l, ok := sdOnce.listeners[name]
	if !ok {
		names := make([]string, 0, len(sdOnce.listeners))
		for n := range sdOnce.listeners {
			names = append(names, n)
		}
		if len(names) == 0 {
			return nil, withHint(fmt.Errorf("%s%s: systemd passed no socket (LISTEN_FDS unset, or for another process)", systemdPrefix, name),
				"start serve through its .socket unit (scripts/examples/ccdir-lmtp.socket), or give host:port or unix:PATH")
		}
		return nil, withHint(fmt.Errorf("%s%s: systemd passed no socket of that name (it passed %s)", systemdPrefix, name, strings.Join(names, ", ")),
			"name it with FileDescriptorName=%s in the .socket unit", name)
	}
	delete(sdOnce.listeners, name) // one listener per socket
	return l, nil
}

// systemdListeners reads the sockets passed from descriptor start on.
func systemdListeners(start int) (map[string]net.Listener, error) {
	pid, fds, names := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES")
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	ls := map[string]net.Listener{}
	if pid == "" || fds == "" || pid != strconv.Itoa(os.Getpid()) {
		return ls, nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 || n > 64 {
		return nil, fmt.Errorf("LISTEN_FDS=%q: want a small number", fds)
	}
	var nameList []string
	if names != "" {
		nameList = strings.Split(names, ":")
	}
	var errs []error
	for i := range n {
		fd := start + i
		name := "unknown" // systemd's name for a socket without FileDescriptorName
		if i < len(nameList) && nameList[i] != "" {
			name = nameList[i]
		}
		syscall.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), name)
		l, err := net.FileListener(f)
		f.Close() // FileListener holds a duplicate
		if err != nil {
			errs = append(errs, fmt.Errorf("socket %d (%s) passed by systemd: %w", fd, name, err))
			continue
		}
		if _, dup := ls[name]; dup {
			l.Close()
			errs = append(errs, fmt.Errorf("systemd passed two sockets named %s", name))
			continue
		}
		ls[name] = l
	}
	if err := errors.Join(errs...); err != nil {
		for _, l := range ls {
			l.Close()
		}
		return nil, err
	}
	return ls, nil
}
