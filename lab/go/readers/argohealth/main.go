// Command argohealth runs an Argo CD resource health check (health.lua) the way
// Argo CD does: the object as the Lua global `obj`, under gopher-lua, the
// interpreter Argo CD embeds. Usage: argohealth health.lua < object.json; prints
// the returned table {"status": ..., "message": ...} as JSON.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	lua "github.com/yuin/gopher-lua"
)

func main() {
	if len(os.Args) != 2 {
		fail(fmt.Errorf("usage: argohealth health.lua < object.json"))
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail(err)
	}
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	var obj interface{}
	if err := json.Unmarshal(raw, &obj); err != nil {
		fail(fmt.Errorf("stdin is not JSON: %w", err))
	}
	// Argo CD opens only the safe standard libraries; so do we.
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
	} {
		l.Push(l.NewFunction(lib.fn))
		l.Push(lua.LString(lib.name))
		l.Call(1, 0)
	}
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(string(script)); err != nil {
		fail(err)
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		fail(fmt.Errorf("health.lua returned %s, not a table", l.Get(-1).Type()))
	}
	out, _ := json.Marshal(map[string]string{
		"status":  lua.LVAsString(ret.RawGetString("status")),
		"message": lua.LVAsString(ret.RawGetString("message")),
	})
	fmt.Println(string(out))
}

// toLua converts decoded JSON into Lua values: objects and arrays become
// tables (arrays 1-based), as Argo CD's own conversion does.
func toLua(l *lua.LState, v interface{}) lua.LValue {
	switch x := v.(type) {
	case map[string]interface{}:
		t := l.NewTable()
		for k, e := range x {
			t.RawSetString(k, toLua(l, e))
		}
		return t
	case []interface{}:
		t := l.NewTable()
		for _, e := range x {
			t.Append(toLua(l, e))
		}
		return t
	case string:
		return lua.LString(x)
	case float64:
		return lua.LNumber(x)
	case bool:
		return lua.LBool(x)
	default:
		return lua.LNil
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "argohealth:", err)
	os.Exit(1)
}
