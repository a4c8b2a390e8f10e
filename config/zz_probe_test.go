package config

import (
	"reflect"
	"testing"
	"time"
)

func walkFields(v reflect.Value, path string, f func(v reflect.Value, path string)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name := sf.Tag.Get("yaml")
		for j := range name {
			if name[j] == ',' {
				name = name[:j]
				break
			}
		}
		fv := v.Field(i)
		p := join(path, name)
		if name == "" {
			p = path
		}
		if fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeOf(time.Duration(0)) {
			walkFields(fv, p, f)
			continue
		}
		f(fv, p)
	}
}

func TestZZProbeValues(t *testing.T) {
	base := Default()
	var paths []string
	walkFields(reflect.ValueOf(&base).Elem(), "", func(v reflect.Value, p string) { paths = append(paths, p) })
	for _, p := range paths {
		for _, mode := range []string{"neg", "zero", "huge"} {
			cfg := Default()
			var kind reflect.Kind
			var ok bool
			walkFields(reflect.ValueOf(&cfg).Elem(), "", func(v reflect.Value, q string) {
				if q != p {
					return
				}
				kind = v.Kind()
				switch v.Kind() {
				case reflect.Int, reflect.Int64, reflect.Int32:
					ok = true
					switch mode {
					case "neg":
						v.SetInt(-1)
					case "zero":
						v.SetInt(0)
					case "huge":
						v.SetInt(1 << 62)
					}
				case reflect.Float64:
					ok = true
					switch mode {
					case "neg":
						v.SetFloat(-1)
					case "zero":
						v.SetFloat(0)
					case "huge":
						v.SetFloat(1e300)
					}
				}
			})
			if !ok {
				continue
			}
			if err := cfg.Validate(); err == nil {
				t.Logf("ACCEPTED %s %s (%v)", mode, p, kind)
			}
		}
	}
}
