#!/usr/bin/perl
# SPDX-License-Identifier: MIT
# Writes geoip/gslb-test-city.mmdb, a small GeoIP2-City-shaped test database, from gslb-test-city.json.
#
# Usage: perl geoip/make-test-db.pl [SOURCE.json [OUTPUT.mmdb]]
# Needs Debian's libmaxmind-db-writer-perl.  The output is reproducible: the
# build epoch comes from SOURCE_DATE_EPOCH (default: a fixed date), so
# regenerating from an unchanged source gives the same bytes.  See README.md.
use strict;
use warnings;
use utf8;

use File::Basename qw(dirname);
use JSON::PP ();
use MaxMind::DB::Writer::Tree;

my $dir = dirname(__FILE__);
my $src = shift // "$dir/gslb-test-city.json";
my $out = shift // "$dir/gslb-test-city.mmdb";

# The MaxMind DB format is typed and Perl is not: the writer asks this table
# for the type of every map key, at every depth, and dies on a key it does not
# know.  Coordinates must be doubles, as libmaxminddb and the GeoIP2 readers
# expect; a Perl number would otherwise have no fixed type.
my %types = (
	accuracy_radius    => 'uint16',
	city               => 'map',
	code               => 'utf8_string',
	continent          => 'map',
	country            => 'map',
	en                 => 'utf8_string',
	geoname_id         => 'uint32',
	iso_code           => 'utf8_string',
	latitude           => 'double',
	location           => 'map',
	longitude          => 'double',
	names              => 'map',
	registered_country => 'map',
	subdivisions       => [ 'array', 'map' ],
	time_zone          => 'utf8_string',
);

my $tree = MaxMind::DB::Writer::Tree->new(
	ip_version    => 6,
	record_size   => 28,
	database_type => 'GeoIP2-City',
	languages     => ['en'],
	description   => { en => 'gslbd test City database (fake data, documentation and private ranges)' },
	# The default (1) silently drops every reserved network, which is all
	# this database holds: 10/8, 192.0.2/24, 2001:db8::/32 ...
	remove_reserved_networks => 0,
	# IPv4 networks live in ::/96; also make ::ffff:0:0/96, 6to4 and Teredo
	# lead to them, as in MaxMind's own databases.
	alias_ipv6_to_ipv4 => 1,
	map_key_type_callback => sub {
		my $t = $types{ $_[0] };
		die "make-test-db.pl: no type for map key '$_[0]'\n" unless defined $t;
		return $t;
	},
);
$tree->_set_build_epoch($ENV{SOURCE_DATE_EPOCH} // 1767225600);    # 2026-01-01T00:00:00Z

open(my $in, '<:raw', $src) or die "make-test-db.pl: $src: $!\n";
my $json = do { local $/; <$in> };
close($in);
my $list = JSON::PP->new->utf8->decode($json);

# The last insert wins where networks overlap, so insert the widest first and
# a more specific network then carves its part out of the wider one.
my @nets;
for my $item (@$list) {
	for my $net (keys %$item) {
		next if $net eq '//';
		my ($len) = $net =~ m{/(\d+)$} or die "make-test-db.pl: $net: not CIDR\n";
		push @nets, [ $net, $len, $item->{$net} ];
	}
}
for my $n (sort { $a->[1] <=> $b->[1] or $a->[0] cmp $b->[0] } @nets) {
	$tree->insert_network($n->[0], $n->[2]);
}

my $tmp = "$out.tmp";
open(my $fh, '>:raw', $tmp) or die "make-test-db.pl: $tmp: $!\n";
$tree->write_tree($fh);
close($fh) or die "make-test-db.pl: $tmp: $!\n";
rename($tmp, $out) or die "make-test-db.pl: $out: $!\n";
printf "%s: %d networks from %s\n", $out, scalar(@nets), $src;
