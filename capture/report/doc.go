// Package report reads run dirs back, through capture's run dir reader, and
// explains them: the report (text, JSON, HTML) with its inferences and TLS
// section, the HAR, and the redacted evidence bundle. Nothing that runs in
// the proxy imports it (docs/records.md).
package report
