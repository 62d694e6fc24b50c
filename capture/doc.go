// Package capture writes down everything wstap sees while the proxy runs: the
// event log, the session records (their schema is capture/record), the
// decrypted pcapng, the TLS key log. The relay hands it work through bounded
// queues and never waits on the disk (docs/records.md, rule 6). It also holds
// the one reader of a run dir (rundir.go); what is read back afterwards — the
// report, HAR, evidence bundle — lives in capture/report, which imports
// capture, never the other way.
package capture
