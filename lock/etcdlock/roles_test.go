package etcdlock_test

func registerRoles() {}
