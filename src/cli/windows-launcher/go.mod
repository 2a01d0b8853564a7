// The plugin's launcher for Windows (see main.go), built by lab/plugin/release.ts.
module livepatch.io/operator/windows-launcher

go 1.26.0
