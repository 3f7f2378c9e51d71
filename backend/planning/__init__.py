"""分类分级, annual plans and 双随机、一公开 draws that anyone can verify."""
