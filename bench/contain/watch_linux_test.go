package contain_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

const stopName = ".bench-watch-stop"

// renameWatch counts how many times a file named name is renamed into dir: WriteFileAtomic
// ends each state write with a rename over state.json, so this is the number of state file
// writes, counted without touching npmir's code.
type renameWatch struct {
	fd    int
	dir   string
	n     atomic.Int64
	done  chan struct{}
	start bool
}

func watchRenames(dir, name string) *renameWatch {
	w := &renameWatch{fd: -1, dir: dir, done: make(chan struct{})}
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
	if err != nil {
		close(w.done)
		return w
	}
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_MOVED_TO); err != nil {
		syscall.Close(fd)
		close(w.done)
		return w
	}
	w.fd, w.start = fd, true
	go func() {
		defer close(w.done)
		buf := make([]byte, 64<<10)
		for {
			n, err := syscall.Read(fd, buf)
			if err != nil || n <= 0 {
				return
			}
			for off := 0; off+syscall.SizeofInotifyEvent <= n; {
				ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
				nameBytes := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(ev.Len)]
				switch string(bytes.TrimRight(nameBytes, "\x00")) {
				case name:
					w.n.Add(1)
				case stopName:
					return
				}
				off += syscall.SizeofInotifyEvent + int(ev.Len)
			}
		}
	}()
	return w
}

// stop ends the watch and returns the count (-1 when inotify was unavailable).
func (w *renameWatch) stop() int64 {
	if !w.start {
		return -1
	}
	// Closing the descriptor does not wake a blocked read: rename a sentinel into the folder,
	// which the reader takes as its cue to return.
	tmp := filepath.Join(w.dir, stopName+".tmp")
	if os.WriteFile(tmp, nil, 0o600) == nil && os.Rename(tmp, filepath.Join(w.dir, stopName)) == nil {
		select {
		case <-w.done:
		case <-time.After(5 * time.Second):
		}
		os.Remove(filepath.Join(w.dir, stopName))
	}
	syscall.Close(w.fd)
	return w.n.Load()
}
