// An empty assembly file: it lets state.go declare completeState without a body
// (a go:linkname to gVisor's tcp package).
