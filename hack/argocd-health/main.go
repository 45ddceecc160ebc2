// argocd-health runs Argo CD resource health checks (resource_customizations/<group>/<Kind>/health.lua)
// in gopher-lua, the Lua interpreter Argo CD embeds, set up as Argo CD sets it up for a health
// check from argocd-cm (resource.customizations.health.<group>_<Kind>): no open libraries but
// package, base and table (so no string or os library: a script that works here works there,
// and as a built-in check, which gets all libraries, too), the object as the global `obj`, one
// second to finish, and the returned table read as {status, message}.
//
//	argocd-health test DIR     runs every case of every DIR/<group>/<Kind>/health_test.yaml, as
//	                           Argo CD's own test of resource_customizations does; one line per
//	                           case; exit 1 when a case fails or there is none
//	argocd-health eval SCRIPT  reads one object (YAML or JSON) on stdin, prints its health as JSON
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

// Health is what Argo CD reads off the table a health script returns.
type Health struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// The statuses Argo CD knows (anything else reads as Unknown with a message saying so).
var validStatus = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true,
}

type testFile struct {
	Tests []struct {
		InputPath    string `json:"inputPath"`
		HealthStatus Health `json:"healthStatus"`
	} `json:"tests"`
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: argocd-health test DIR | argocd-health eval SCRIPT < object")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "test":
		err = runTests(os.Args[2], os.Stdout)
	case "eval":
		err = evalStdin(os.Args[2], os.Stdin, os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q (test or eval)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "argocd-health:", err)
		os.Exit(1)
	}
}

func evalStdin(scriptPath string, in io.Reader, out io.Writer) error {
	script, err := os.ReadFile(scriptPath)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	obj, err := parseObject(data)
	if err != nil {
		return fmt.Errorf("stdin: %w", err)
	}
	health, err := evaluate(string(script), obj)
	if err != nil {
		return fmt.Errorf("%s: %w", scriptPath, err)
	}
	return json.NewEncoder(out).Encode(health)
}

func runTests(dir string, out io.Writer) error {
	var scripts []string
	err := filepath.WalkDir(dir, func(path string, entry os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !entry.IsDir() && entry.Name() == "health.lua" {
			scripts = append(scripts, path)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(scripts)
	cases, failures := 0, 0
	for _, scriptPath := range scripts {
		kindDir := filepath.Dir(scriptPath)
		name, _ := filepath.Rel(dir, kindDir)
		script, err := os.ReadFile(scriptPath)
		if err != nil {
			return err
		}
		raw, err := os.ReadFile(filepath.Join(kindDir, "health_test.yaml"))
		if err != nil {
			return fmt.Errorf("%s has no health_test.yaml: %w", name, err)
		}
		var tests testFile
		if err := yaml.UnmarshalStrict(raw, &tests); err != nil {
			return fmt.Errorf("%s/health_test.yaml: %w", name, err)
		}
		for _, test := range tests.Tests {
			cases++
			where := filepath.Join(name, test.InputPath)
			data, err := os.ReadFile(filepath.Join(kindDir, test.InputPath))
			if err != nil {
				return err
			}
			obj, err := parseObject(data)
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			got, err := evaluate(string(script), obj)
			if err != nil {
				failures++
				fmt.Fprintf(out, "FAIL %s: %v\n", where, err)
				continue
			}
			if got != test.HealthStatus {
				failures++
				fmt.Fprintf(out, "FAIL %s: got %s %q, want %s %q\n", where, got.Status, got.Message,
					test.HealthStatus.Status, test.HealthStatus.Message)
				continue
			}
			fmt.Fprintf(out, "ok   %s: %s %q\n", where, got.Status, got.Message)
		}
	}
	if cases == 0 {
		return fmt.Errorf("no health_test.yaml cases under %s", dir)
	}
	if failures > 0 {
		return fmt.Errorf("%d of %d cases failed", failures, cases)
	}
	return nil
}

// parseObject reads YAML or JSON (JSON is YAML) into the form Argo CD's unstructured objects have.
func parseObject(data []byte) (map[string]any, error) {
	obj := map[string]any{}
	if err := yaml.Unmarshal(data, &obj); err != nil {
		return nil, err
	}
	if len(obj) == 0 {
		return nil, errors.New("no object")
	}
	return obj, nil
}

func evaluate(script string, obj map[string]any) (Health, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return Health{}, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return Health{}, err
	}
	returned := l.Get(-1)
	table, ok := returned.(*lua.LTable)
	if !ok {
		return Health{}, fmt.Errorf("the script returned %s, not a table", returned.Type())
	}
	health := Health{Status: lua.LVAsString(table.RawGetString("status")), Message: lua.LVAsString(table.RawGetString("message"))}
	if !validStatus[health.Status] {
		return Health{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return health, nil
}

// toLua converts a decoded object as Argo CD's decodeValue does: maps to tables, lists to arrays.
func toLua(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		array := l.CreateTable(len(v), 0)
		for _, item := range v {
			array.Append(toLua(l, item))
		}
		return array
	case map[string]any:
		table := l.CreateTable(0, len(v))
		for key, item := range v {
			table.RawSetH(lua.LString(key), toLua(l, item))
		}
		return table
	}
	return lua.LNil
}
