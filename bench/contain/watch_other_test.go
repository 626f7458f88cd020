//go:build !linux

package contain_test

type renameWatch struct{}

func watchRenames(dir, name string) *renameWatch { return &renameWatch{} }

func (w *renameWatch) stop() int64 { return -1 }
