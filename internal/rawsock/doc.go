// Package rawsock reads and writes a non-blocking socket with raw system
// calls, which do not tell Go's scheduler that the goroutine entered the
// kernel. Linux only: elsewhere Wrap returns nil and callers use the
// net.Conn.
//
// Go's net package enters every read and write through the scheduler
// (entersyscall/exitsyscall): a call the system monitor sees still in the
// kernel on its next tick (20 µs under load) has its P handed to another
// thread, which is woken for it, and the caller, back from the kernel,
// finds its P gone and waits for one. A write to a loopback or LAN socket
// does the receiver's TCP work in the caller's call, tens of
// microseconds, so on a busy node many replies cost thread wake-ups
// besides the write. A socket whose calls never block (Go's are
// non-blocking; EAGAIN waits in the netpoller as usual) needs none of
// that. Only for short calls: a reply, a command, a buffer's read or
// write of at most MaxWrite; more goes through the net.Conn, so that the
// P is handed off while the kernel copies it.
package rawsock
