// Package failtest holds fastsse's failure tests (issue #6): stuck and killed
// clients, drain under load, panics under load, races at the end of a
// connection, connection churn and bad requests. Each test runs once per
// transport (subtests "stream" and "dense"), on loopback only, bounded in time
// and in connections. The package has no code of its own; the tests are
// Linux-only (they read /proc and set socket options).
package failtest
