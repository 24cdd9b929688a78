//go:build race

package chaos

// raceDetector is true in a build with the race detector, which slows
// every goroutine several times over: deadlines get more grace.
const raceDetector = true
