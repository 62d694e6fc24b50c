package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// update rewrites the golden files from the report as it is now: run it with
// `go test ./capture/report -run Golden -update` when the report's output is
// meant to change, and commit the files with the change.
var update = flag.Bool("update", false, "rewrite the golden files")

// goldenRun is the fixture run dir recorded by "wstap demo" (testdata/rundir/README.md).
var goldenRun = filepath.Join("..", "..", "testdata", "rundir", "demo")

// goldenSummary reads the fixture as "wstap report demo" would from
// testdata/rundir: the run's dir is named "demo".
func goldenSummary(t *testing.T) *Summary {
	t.Helper()
	run, err := LoadRun(goldenRun)
	if err != nil {
		t.Fatal(err)
	}
	s := Summarize(run)
	s.Runs[0].Dir = "demo"
	return s
}

// TestReportGoldenJSON: the report of the fixture is, byte for byte, what
// "wstap report --json" prints for it (-update rewrites it).
func TestReportGoldenJSON(t *testing.T) {
	var got bytes.Buffer
	enc := json.NewEncoder(&got)
	enc.SetIndent("", "  ")
	if err := enc.Encode(goldenSummary(t)); err != nil {
		t.Fatal(err)
	}
	compareGolden(t, got.Bytes(), filepath.Join("..", "..", "testdata", "rundir", "demo.report.json"))
}

// TestReportGoldenText: the same for the text report.
func TestReportGoldenText(t *testing.T) {
	var got bytes.Buffer
	if err := goldenSummary(t).WriteText(&got); err != nil {
		t.Fatal(err)
	}
	compareGolden(t, got.Bytes(), filepath.Join("..", "..", "testdata", "rundir", "demo.report.txt"))
}

func compareGolden(t *testing.T, got []byte, path string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	for i := 0; i < min(len(gl), len(wl)); i++ {
		if !bytes.Equal(gl[i], wl[i]) {
			t.Fatalf("%s differs at line %d:\n got: %s\nwant: %s", path, i+1, gl[i], wl[i])
		}
	}
	t.Fatalf("%s: got %d lines, want %d", path, len(gl), len(wl))
}
