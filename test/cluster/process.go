package cluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// Process is a child process with its own process group and log file. It dies with
// the process that started it (Pdeathsig), so a crashed test leaves no orphan.
type Process struct {
	Name string
	// LogPath holds the process's stdout and stderr.
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
}

// StartProcess starts path with args, logging to dir/<name>.log.
func StartProcess(dir, name, path string, args []string, env ...string) (*Process, error) {
	logPath := filepath.Join(dir, name+".log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := Spawn(cmd); err != nil {
		log.Close()
		return nil, fmt.Errorf("failed to start %s: %w", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	return p, nil
}

// Spawn starts cmd from the one OS thread that starts every child of this process.
//
// Pdeathsig signals a child when the thread that forked it ends, not the process
// (go.dev/issue/27505), and the Go runtime ends a thread whenever a goroutine locked
// to it returns: a child started from such a thread was killed in the middle of a
// test (the operator's log, or the controller manager's, just stopped). The spawning
// thread is locked by a goroutine that never returns, so it lives as long as the
// process, and its children exactly as long.
func Spawn(cmd *exec.Cmd) error {
	spawnerOnce.Do(func() { go spawner() })
	done := make(chan error)
	spawns <- spawn{cmd, done}
	return <-done
}

type spawn struct {
	cmd  *exec.Cmd
	done chan error
}

var (
	spawnerOnce sync.Once
	spawns      = make(chan spawn)
)

func spawner() {
	runtime.LockOSThread() // never unlocked: the thread must not end before the process
	for s := range spawns {
		s.done <- s.cmd.Start()
	}
}

// Pid returns the process's ID, which is also its process group's.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited tells whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM to the process group, and SIGKILL if it has not ended within
// grace.
func (p *Process) Stop(grace time.Duration) error {
	if exited, _ := p.Exited(); exited {
		return nil
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.done
	}
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		return nil // ended by our signal
	}
	return p.err
}

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Kill ends the process group at once, as a crash would.
func (p *Process) Kill() {
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	<-p.done
}
