// Package apilist lists the exported API of Go packages, one line per
// identifier, in the manner of Go's own api/go1.*.txt files:
//
//	pkg bucket, func NewStore(StoreConfig) (*Store, error)
//	pkg bucket, method (*Store) Check(Request) (Decision, error)
//	pkg bucket, type Request struct, UserID string
//
// The listing is read from the compiler's export data (go list -export),
// so it sees exactly what an importer sees and takes a second or two on a
// warm build cache. api/exported.txt is this module's listing; the test
// beside it fails when the code and the file disagree.
package apilist

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/constant"
	"go/importer"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
)

// Excluded are the packages outside internal/ that the listing leaves
// out, each with the reason. Every other importable package of the module
// is listed, so a new package is covered until someone decides otherwise.
var Excluded = map[string]string{
	"chaos":            "the project's own fault-injection suite, run by its tests and cmd/chaos; not for users",
	"chaos/report":     "writes the chaos suite's report; not for users",
	"examples/readme":  "the README's examples, kept compiling by go test; nothing to import",
	"examples/openapi": "a client generated from api/openapi.yaml, to show that one can be; its API is the generator's",
}

// Module returns the listing of the public packages of the module in dir
// (see Public).
func Module(dir string) ([]string, error) {
	module, paths, err := Public(dir)
	if err != nil {
		return nil, err
	}
	return List(dir, module, paths...)
}

// Public returns the module path of the module in dir and the import
// paths of its public packages: every package matched by ./... that is not
// a command, has Go files, has no "internal" element in its path and is
// not Excluded.
func Public(dir string) (module string, paths []string, err error) {
	out, err := goList(dir, "-m", "-f", "{{.Path}}")
	if err != nil {
		return "", nil, err
	}
	module = strings.TrimSpace(string(out))
	out, err = goList(dir, "-f", "{{.ImportPath}} {{.Name}} {{len .GoFiles}}", "./...")
	if err != nil {
		return "", nil, err
	}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) != 3 || f[1] == "main" || f[2] == "0" {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(f[0], module), "/")
		if _, skip := Excluded[rel]; skip || slices.Contains(strings.Split(rel, "/"), "internal") {
			continue
		}
		paths = append(paths, f[0])
	}
	return module, paths, nil
}

// List returns the sorted listing of the exported API of pkgs (import
// paths or patterns, as go list takes them, relative to dir). Types of
// packages inside module are written with paths relative to it
// ("bucket.Request", "internal/engine.Moved"), others with their import path
// ("time.Duration").
func List(dir, module string, pkgs ...string) ([]string, error) {
	args := append([]string{"-export", "-deps", "-json=ImportPath,Name,Export,DepOnly,Error"}, pkgs...)
	out, err := goList(dir, args...)
	if err != nil {
		return nil, err
	}
	exports := map[string]string{}
	type pkgInfo struct{ ImportPath, Name, Export string }
	var roots []pkgInfo
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			pkgInfo
			DepOnly bool
			Error   *struct{ Err string }
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("apilist: reading go list: %w", err)
		}
		if p.Error != nil {
			return nil, fmt.Errorf("apilist: %s: %s", p.ImportPath, p.Error.Err)
		}
		exports[p.ImportPath] = p.Export
		if !p.DepOnly {
			roots = append(roots, p.pkgInfo)
		}
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok || f == "" {
			return nil, fmt.Errorf("apilist: no export data for %s", path)
		}
		return os.Open(f)
	})
	var loaded []*types.Package
	for _, r := range roots {
		pkg, err := imp.Import(r.ImportPath)
		if err != nil {
			return nil, fmt.Errorf("apilist: %w", err)
		}
		loaded = append(loaded, pkg)
	}
	// A type of an internal package that a listed package re-exports by an
	// alias is written by that alias's name: the export data records
	// fields and results by their target type.
	aliases := map[*types.TypeName]*types.TypeName{}
	for _, pkg := range loaded {
		for _, n := range pkg.Scope().Names() {
			obj, ok := pkg.Scope().Lookup(n).(*types.TypeName)
			if !ok || !obj.Exported() || !obj.IsAlias() {
				continue
			}
			if target, ok := types.Unalias(obj.Type()).(*types.Named); ok && isInternal(target.Obj().Pkg()) {
				aliases[target.Obj()] = obj
			}
		}
	}
	var lines []string
	for _, pkg := range loaded {
		lines = append(lines, listPackage(pkg, module, aliases)...)
	}
	slices.Sort(lines)
	return slices.Compact(lines), nil
}

func isInternal(p *types.Package) bool {
	return p != nil && strings.Contains("/"+p.Path()+"/", "/internal/")
}

// listPackage lists one package's exported identifiers.
func listPackage(pkg *types.Package, module string, aliases map[*types.TypeName]*types.TypeName) []string {
	name := strings.TrimPrefix(strings.TrimPrefix(pkg.Path(), module), "/")
	if name == "" {
		name = pkg.Name()
	}
	path := func(p *types.Package) string {
		switch {
		case p == pkg:
			return ""
		case p.Path() == module:
			return p.Name()
		case strings.HasPrefix(p.Path(), module+"/"):
			return strings.TrimPrefix(p.Path(), module+"/")
		}
		return p.Path()
	}
	// Internal packages are marked so that their types can be renamed to
	// their public aliases after printing; one without an alias stays
	// visible as internal/..., which is a leak to fix.
	qual := func(p *types.Package) string {
		if p != pkg && isInternal(p) {
			return "\x00" + p.Path()
		}
		return path(p)
	}
	typ := func(t types.Type) string {
		s := types.TypeString(t, qual)
		if !strings.Contains(s, "\x00") {
			return s
		}
		return internalName.ReplaceAllStringFunc(s, func(m string) string {
			dot := strings.LastIndexByte(m, '.')
			ipath, n := m[1:dot], m[dot+1:]
			for target, alias := range aliases {
				if target.Pkg().Path() == ipath && target.Name() == n {
					if q := path(alias.Pkg()); q != "" {
						return q + "." + alias.Name()
					}
					return alias.Name()
				}
			}
			return strings.TrimPrefix(strings.TrimPrefix(ipath, module), "/") + "." + n
		})
	}
	prefix := "pkg " + name + ", "
	var out []string
	emit := func(format string, args ...any) { out = append(out, prefix+fmt.Sprintf(format, args...)) }

	scope := pkg.Scope()
	for _, n := range scope.Names() {
		obj := scope.Lookup(n)
		if !obj.Exported() {
			continue
		}
		switch obj := obj.(type) {
		case *types.Const:
			t := typ(obj.Type())
			if b, ok := obj.Type().(*types.Basic); ok && b.Info()&types.IsUntyped != 0 {
				t = "untyped " + strings.TrimPrefix(b.Name(), "untyped ")
			}
			emit("const %s %s = %s", n, t, constString(obj.Val()))
		case *types.Var:
			emit("var %s %s", n, typ(obj.Type()))
		case *types.Func:
			emit("func %s%s", n, signature(obj.Type().(*types.Signature), typ))
		case *types.TypeName:
			listType(obj, typ, emit)
		}
	}
	return out
}

// internalName matches a type name qualified by an internal package, as
// listPackage's qualifier marks it.
var internalName = regexp.MustCompile("\x00[^ ,()\\[\\]{}*]+\\.[A-Za-z_][A-Za-z0-9_]*")

// listType lists a type: its kind, then its exported fields or interface
// methods, then the exported methods of its method set. An alias to a type
// of an internal package lists the target's fields and methods too, since
// they are then part of this package's API.
func listType(obj *types.TypeName, typ func(types.Type) string, emit func(string, ...any)) {
	n := obj.Name()
	t := obj.Type()
	if obj.IsAlias() {
		target, ok := types.Unalias(t).(*types.Named)
		if !ok || !isInternal(target.Obj().Pkg()) {
			emit("type %s = %s", n, typ(types.Unalias(t)))
			return
		}
		// Defined in an internal package but public through this alias:
		// listed as if declared here, which is how its users see it.
		t = target
	}
	tparams := ""
	if named, ok := t.(*types.Named); ok && named.TypeParams().Len() > 0 {
		var ps []string
		for p := range named.TypeParams().TypeParams() {
			ps = append(ps, p.Obj().Name()+" "+typ(p.Constraint()))
		}
		tparams = "[" + strings.Join(ps, ", ") + "]"
	}
	under := t.Underlying()
	switch u := under.(type) {
	case *types.Struct:
		{
			emit("type %s%s struct", n, tparams)
		}
		for f := range u.Fields() {
			switch {
			case !f.Exported():
			case f.Embedded():
				emit("type %s struct, embedded %s", n, typ(f.Type()))
			default:
				emit("type %s struct, %s %s", n, f.Name(), typ(f.Type()))
			}
		}
	case *types.Interface:
		var names []string
		for m := range u.Methods() {
			if m.Exported() {
				names = append(names, m.Name())
			} else {
				names = append(names, "unexported methods")
			}
		}
		for e := range u.EmbeddedTypes() {
			if _, ok := e.Underlying().(*types.Interface); !ok {
				names = append(names, typ(e)) // a constraint's type terms
			}
		}
		slices.Sort(names)
		names = slices.Compact(names)
		{
			emit("type %s%s interface { %s }", n, tparams, strings.Join(names, ", "))
		}
		for m := range u.Methods() {
			if m.Exported() {
				emit("type %s interface, %s%s", n, m.Name(), signature(m.Type().(*types.Signature), typ))
			}
		}
		return // an interface's method set is its methods
	case *types.Signature:
		{
			emit("type %s%s func%s", n, tparams, signature(u, typ))
		}
	default:
		{
			emit("type %s%s %s", n, tparams, typ(under))
		}
	}
	// A method is listed on T if T's method set has it, else on *T.
	values := types.NewMethodSet(t)
	for sel := range types.NewMethodSet(types.NewPointer(t)).Methods() {
		m := sel.Obj().(*types.Func)
		if !m.Exported() {
			continue
		}
		recv := n
		if values.Lookup(m.Pkg(), m.Name()) == nil {
			recv = "*" + n
		}
		emit("method (%s) %s%s", recv, m.Name(), signature(m.Type().(*types.Signature), typ))
	}
}

// signature writes a signature's parameter and result types, without
// names: renaming a parameter changes no caller.
func signature(sig *types.Signature, typ func(types.Type) string) string {
	var b strings.Builder
	if tp := sig.TypeParams(); tp.Len() > 0 {
		var ps []string
		for p := range tp.TypeParams() {
			ps = append(ps, p.Obj().Name()+" "+typ(p.Constraint()))
		}
		b.WriteString("[" + strings.Join(ps, ", ") + "]")
	}
	tuple := func(t *types.Tuple, variadic bool) []string {
		var s []string
		for i := range t.Len() {
			pt := t.At(i).Type()
			if variadic && i == t.Len()-1 {
				s = append(s, "..."+typ(pt.(*types.Slice).Elem()))
				continue
			}
			s = append(s, typ(pt))
		}
		return s
	}
	b.WriteString("(" + strings.Join(tuple(sig.Params(), sig.Variadic()), ", ") + ")")
	switch res := tuple(sig.Results(), false); len(res) {
	case 0:
	case 1:
		b.WriteString(" " + res[0])
	default:
		b.WriteString(" (" + strings.Join(res, ", ") + ")")
	}
	return b.String()
}

func constString(v constant.Value) string {
	if v.Kind() == constant.Float {
		f, _ := constant.Float64Val(v)
		return fmt.Sprint(f)
	}
	return v.ExactString()
}

// Diff compares a committed listing with a fresh one and returns nil when
// they agree; otherwise an error listing, one per line, what the code has
// that the listing lacks ("+") and what the listing has that the code
// lacks ("-").
func Diff(committed, current []string) error {
	want := map[string]bool{}
	for _, l := range committed {
		want[l] = true
	}
	have := map[string]bool{}
	for _, l := range current {
		have[l] = true
	}
	var b strings.Builder
	for _, l := range current {
		if !want[l] {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
	}
	for _, l := range committed {
		if !have[l] {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	return errors.New(b.String())
}

// Parse reads a listing: one line per identifier; blank lines and lines
// starting with # are skipped.
func Parse(r io.Reader) ([]string, error) {
	var lines []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, l)
	}
	return lines, sc.Err()
}

func goList(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("apilist: go list %s: %w\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out, nil
}
